//go:build unix

package edge

import (
	"errors"

	"golang.org/x/sys/unix"
)

// tryWrite writes as much of w as the socket takes without waiting, and drops it from w. done:
// all of it was written. A connection that is not a plain socket writes nothing here (done
// false): its writes all wait (writeBlocking).
func (c *wsConn) tryWrite(w *wireBatch) (done bool, err error) {
	if c.raw == nil {
		return len(w.iov) == 0, nil
	}
	var werr error
	flat := w.flatten()
	err = c.raw.Write(func(fd uintptr) bool {
		for len(w.iov) > 0 {
			var n int
			var e error
			if flat != nil {
				n, e = unix.Write(int(fd), flat)
			} else {
				n, e = unix.Writev(int(fd), w.iov)
			}
			if e == unix.EINTR {
				continue
			}
			if n > 0 {
				w.consume(n)
				flat = nil // what is left goes as iovecs, if ever
			}
			if e != nil && e != unix.EAGAIN {
				werr = e
			}
			// EAGAIN, or a short write (the socket is full: the next would be EAGAIN): done for
			// now. Never wait: the caller hands the rest to a goroutine that may.
			if e != nil || len(w.iov) > 0 {
				break
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return false, err
	}
	return len(w.iov) == 0, err
}
