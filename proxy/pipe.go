package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
)

// copyBuf is the buffer a direction borrows only while bytes are flowing: an idle tunnel (the
// usual WebSocket) holds none. 16 KiB moves a big reply in few writes.
var copyBuf = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// pipe copies src to dst until src ends; eof is true when it ended cleanly (the sender
// half-closed), false on any error.
//
// It reads with readReady, which takes a buffer only once src has bytes, so that the goroutine
// parked on an idle connection holds none; io.Copy would hold one for the connection's life,
// or take the splice path, which holds two pipe descriptors.
func pipe(dst, src net.Conn) (eof bool) {
	read, write := readReady(src), writeAll(dst)
	for {
		bp, n, err := read()
		if n > 0 {
			if werr := write((*bp)[:n]); werr != nil {
				copyBuf.Put(bp)
				return false
			}
		}
		if bp != nil {
			copyBuf.Put(bp)
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// readBlocking is readReady where the socket cannot be watched: it holds its buffer while it
// waits.
func readBlocking(c net.Conn) func() (*[]byte, int, error) {
	return func() (*[]byte, int, error) {
		bp := copyBuf.Get().(*[]byte)
		n, err := c.Read(*bp)
		return bp, n, err
	}
}
