package pubsub

import (
	"bytes"
	"runtime"
	"strconv"
)

// goid returns the current goroutine's ID. TeamSub.Close uses it only to tell whether it runs
// on the subscription's own delivery goroutine (from inside a Handler), where waiting for that
// goroutine to end would deadlock. It is called once per Close, never on the event path.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	b := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
