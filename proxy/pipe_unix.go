//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// waitReadable returns a function that blocks until c has bytes (or an EOF or error) to read,
// without reading them; nil when c is not a socket it can watch (the copy then simply reads).
func waitReadable(c net.Conn) func() error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() error {
		var one [1]byte
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			// A peek, not a read: the bytes stay for the Read that follows. EAGAIN means
			// nothing yet: returning false parks this goroutine in the runtime's poller.
			_, _, e := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if errors.Is(e, syscall.EAGAIN) {
				return false
			}
			if e != nil && !errors.Is(e, syscall.EINTR) {
				perr = e
			}
			return true
		})
		if err != nil {
			return err
		}
		return perr
	}
}
