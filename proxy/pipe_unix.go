//go:build unix

package proxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// The relay's reads and writes are raw system calls on the runtime poller's non-blocking
// sockets: a plain syscall.Read enters the scheduler's syscall state, and its first one after
// the proxy was idle wakes the runtime's monitor thread (sysmon), which then polls at 20 µs
// for a while. On an idle-to-busy proxy that was two more context switches and ~10 µs more CPU
// for every relayed frame, and it showed in the added round trip (results/fronts). A
// non-blocking call on a socket returns at once, which is what a raw call needs.

// rawRead reads into p from fd without entering the scheduler's syscall state.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e != syscall.EINTR {
			return int(n), e
		}
	}
}

// rawWrite writes p to fd the same way.
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e != syscall.EINTR {
			return int(n), e
		}
	}
}

// readReady returns a function that waits until c has bytes (or an EOF or error), then reads
// them into a buffer from copyBuf it takes only then: the buffer (nil when nothing was read)
// is the caller's to put back. It reads in the runtime poller's callback, so a wake-up costs
// one read, not a readiness check and then a read.
func readReady(c net.Conn) func() (*[]byte, int, error) {
	rc := rawConn(c)
	if rc == nil {
		return readBlocking(c)
	}
	return func() (*[]byte, int, error) {
		var bp *[]byte
		var n int
		var errno syscall.Errno
		err := rc.Read(func(fd uintptr) bool {
			if bp == nil {
				bp = copyBuf.Get().(*[]byte)
			}
			n, errno = rawRead(fd, *bp)
			if errno == syscall.EAGAIN {
				// Nothing yet: the buffer goes back while this goroutine is parked in the
				// runtime's poller until the socket is readable.
				copyBuf.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		switch {
		case err != nil: // closed, or past a deadline
			return bp, 0, err
		case errno != 0:
			return bp, 0, errno
		case n == 0:
			return bp, 0, io.EOF
		}
		return bp, n, nil
	}
}

// writeAll returns a function that writes all of p to c, waiting in the runtime's poller
// while the socket is full.
func writeAll(c net.Conn) func(p []byte) error {
	rc := rawConn(c)
	if rc == nil {
		return func(p []byte) error { _, err := c.Write(p); return err }
	}
	return func(p []byte) error {
		var errno syscall.Errno
		err := rc.Write(func(fd uintptr) bool {
			for len(p) > 0 {
				n, e := rawWrite(fd, p)
				if e == syscall.EAGAIN {
					return false // full: wait until writable
				}
				if e != 0 {
					errno = e
					return true
				}
				p = p[n:]
			}
			return true
		})
		if err != nil {
			return err
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// rawConn is c's raw connection when c is a socket, else nil.
func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawIO is a socket whose Read and Write are raw non-blocking system calls that wait in the
// runtime's poller (see the top of this file): the proxy's own handshake with the edge and
// its writes to the client, which would otherwise wake sysmon on every connection.
type rawIO struct {
	net.Conn
	rc syscall.RawConn
}

// withRawIO returns c with raw reads and writes, or c itself when it is not a socket.
func withRawIO(c net.Conn) net.Conn {
	if rc := rawConn(c); rc != nil {
		return &rawIO{Conn: c, rc: rc}
	}
	return c
}

func (c *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		n, errno = rawRead(fd, p)
		return errno != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawIO) Write(p []byte) (int, error) {
	total := len(p)
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			n, e := rawWrite(fd, p)
			if e == syscall.EAGAIN {
				return false
			}
			if e != 0 {
				errno = e
				return true
			}
			p = p[n:]
		}
		return true
	})
	if err == nil && errno != 0 {
		err = errno
	}
	return total - len(p), err
}

// SyscallConn and CloseWrite are the socket's: readReady and a half-close find them.
func (c *rawIO) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

func (c *rawIO) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// stillOpen reports whether c's peer has neither closed it nor sent anything: a spare
// connection the edge may have closed since it was dialed (a peek that would block).
func stillOpen(c net.Conn) bool {
	rc := rawConn(c)
	if rc == nil {
		return true
	}
	open := false
	err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		open = e == syscall.EAGAIN
		return true
	})
	return err == nil && open
}
