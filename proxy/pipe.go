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
// It waits for src to be readable before taking a buffer (waitReadable), so that the
// goroutine parked on an idle connection holds no buffer; io.Copy would hold one for the
// connection's life, or take the splice path, which holds two pipe descriptors.
func pipe(dst, src net.Conn) (eof bool) {
	wait := waitReadable(src)
	for {
		if wait != nil {
			if err := wait(); err != nil {
				return false
			}
		}
		bp := copyBuf.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 {
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				copyBuf.Put(bp)
				return false
			}
		}
		copyBuf.Put(bp)
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}
