package edge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/weft-edge/weft/protocol"
)

// wsConn is the server side of one WebSocket connection (RFC 6455): gobwas/ws's handshake and
// frame headers over the hijacked net.Conn, and weft's own read and write loops around them.
// The edge owns the framing so that a session's writer can put every frame it has queued into
// one vectored write (writev: the headers here, the payloads shared by every recipient of an
// event, no copy), attempt it without blocking from the node's writer pool (writers.go), and
// keep nothing per idle connection but a small read buffer: no write buffer, no goroutine.
//
// Reading is the session's reader's alone (readMessage). Writing is whoever holds the
// session's writing flag (session.go); the close and pong frames the reader must send go
// through the session's queue like any frame.
type wsConn struct {
	nc  net.Conn
	raw syscall.RawConn // nil when nc is not a plain socket: every write then blocks (writeBlocking)
	br  *bufio.Reader
}

// readBufferBytes is a session's read buffer: a request frame fits in one read, and 10,000
// idle sessions hold 5 MB of them.
const readBufferBytes = 512

// closeWait is how long a session that sent its close frame waits for the client's before it
// closes the connection anyway.
const closeWait = 5 * time.Second

var upgrader = ws.HTTPUpgrader{
	Protocol: func(p string) bool { return p == protocol.Subprotocol },
	Timeout:  10 * time.Second,
}

// acceptWS upgrades an HTTP request to a WebSocket connection. On error the upgrader has
// answered the client. Tokens, not cookies, authenticate: there is no origin check (a page of
// another origin gains nothing by opening a socket, and the demo page may be served from
// anywhere).
func acceptWS(w http.ResponseWriter, r *http.Request) (*wsConn, error) {
	nc, rw, _, err := upgrader.Upgrade(r, w)
	if err != nil {
		return nil, err
	}
	var src io.Reader = nc
	if n := rw.Reader.Buffered(); n > 0 { // frames the client sent with its handshake
		b, _ := rw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(b)), nc)
	}
	c := &wsConn{nc: nc, br: bufio.NewReaderSize(src, readBufferBytes)}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	return c, nil
}

// Errors of the read side; each maps to an end (readEnd).
var (
	errClientClosed = errors.New("websocket: the client closed the connection")
	errMessageLimit = errors.New("websocket: a message over the hard read limit")
	errProtocol     = errors.New("websocket: protocol violation")
)

// message is what readMessage read: a data message, or a control frame the session must
// answer.
type message struct {
	op      ws.OpCode // OpText, OpBinary, OpPing
	payload []byte    // valid until the next read; a text or binary message's first keep bytes
	over    bool      // the message was longer than keep: payload is its first keep bytes
}

// readMessage reads the next message into buf (reused), of which at most keep bytes are kept
// and at most limit read at all. Pings are returned for the session to answer; pongs are
// skipped; a close frame is errClientClosed (its code in the error).
func (c *wsConn) readMessage(buf *bytes.Buffer, keep, limit int) (message, error) {
	buf.Reset()
	var total int64
	var op ws.OpCode
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return message{}, err
		}
		if h.Rsv != 0 || !h.Masked || h.OpCode.IsReserved() {
			return message{}, fmt.Errorf("%w: rsv %d, masked %v, opcode %d", errProtocol, h.Rsv, h.Masked, h.OpCode)
		}
		if h.OpCode.IsControl() {
			if !h.Fin || h.Length > ws.MaxControlFramePayloadSize {
				return message{}, fmt.Errorf("%w: a fragmented or long control frame", errProtocol)
			}
			var p [ws.MaxControlFramePayloadSize]byte
			if _, err := io.ReadFull(c.br, p[:h.Length]); err != nil {
				return message{}, err
			}
			ws.Cipher(p[:h.Length], h.Mask, 0)
			switch h.OpCode {
			case ws.OpClose:
				code, reason := ws.ParseCloseFrameData(p[:h.Length])
				return message{}, fmt.Errorf("%w: %d %q", errClientClosed, code, reason)
			case ws.OpPing:
				return message{op: ws.OpPing, payload: bytes.Clone(p[:h.Length])}, nil
			}
			continue // a pong
		}
		switch {
		case op == 0 && h.OpCode == ws.OpContinuation, op != 0 && h.OpCode != ws.OpContinuation:
			return message{}, fmt.Errorf("%w: frame opcode %d out of sequence", errProtocol, h.OpCode)
		case op == 0:
			op = h.OpCode
		}
		total += h.Length
		if total > int64(limit) {
			return message{}, errMessageLimit
		}
		kept := min(h.Length, int64(keep+1-buf.Len()))
		buf.Grow(int(kept))
		b := buf.AvailableBuffer()[:kept]
		if _, err := io.ReadFull(c.br, b); err != nil {
			return message{}, err
		}
		ws.Cipher(b, h.Mask, 0)
		buf.Write(b)
		if rest := h.Length - kept; rest > 0 { // past what is kept: read and drop
			if _, err := c.br.Discard(int(rest)); err != nil {
				return message{}, err
			}
		}
		if h.Fin {
			p := buf.Bytes()
			return message{op: op, payload: p[:min(len(p), keep)], over: total > int64(keep)}, nil
		}
	}
}

// outFrame is one frame queued for a client: its opcode and payload. A payload may be shared
// by every recipient of an event: nothing writes into it.
type outFrame struct {
	op ws.OpCode
	p  []byte
}

// maxHeaderBytes is the longest header of a server's frame (unmasked, 64-bit length).
const maxHeaderBytes = 10

// maxIovecs bounds the buffers of one vectored write (Linux's IOV_MAX is 1,024).
const maxIovecs = 1024

// appendHeader appends the header of an unmasked, final frame of op with n bytes of payload.
func appendHeader(b []byte, op ws.OpCode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, 127, byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// wireBatch is frames laid out for one vectored write: headers in hdr, iov alternating header
// and payload. A writer reuses one.
type wireBatch struct {
	hdr  []byte
	iov  [][]byte
	flat []byte // a small turn, copied into one buffer (flatten)
}

// fill lays out as many of frames as one write takes; it returns how many.
func (w *wireBatch) fill(frames []outFrame) int {
	n := min(len(frames), maxIovecs/2)
	// Room for every header first: the iovecs point into hdr, which must not move.
	w.hdr = slices.Grow(w.hdr[:0], n*maxHeaderBytes)
	w.iov = w.iov[:0]
	for _, f := range frames[:n] {
		at := len(w.hdr)
		w.hdr = appendHeader(w.hdr, f.op, len(f.p))
		w.iov = append(w.iov, w.hdr[at:len(w.hdr):len(w.hdr)])
		if len(f.p) > 0 {
			w.iov = append(w.iov, f.p)
		}
	}
	return n
}

// flatMax is the largest turn written as one contiguous buffer: copying a few small frames
// costs less than the kernel's setting up of one iovec each.
const flatMax = 16 << 10

// flatten copies a small turn of several buffers into one (kept in flat, reused), or returns
// nil: a single buffer, or a large turn, goes as it is.
func (w *wireBatch) flatten() []byte {
	if len(w.iov) < 2 {
		return nil
	}
	n := 0
	for _, b := range w.iov {
		if n += len(b); n > flatMax {
			return nil
		}
	}
	w.flat = w.flat[:0]
	for _, b := range w.iov {
		w.flat = append(w.flat, b...)
	}
	return w.flat
}

// flattenFor is flatten where c is not a plain socket (TLS), else nil: there net.Buffers would
// write each frame's header and payload on its own, each a TLS record of its own.
func (w *wireBatch) flattenFor(c *wsConn) []byte {
	if c.raw != nil {
		return nil
	}
	return w.flatten()
}

// consume drops the first n bytes written from iov.
func (w *wireBatch) consume(n int) {
	for n > 0 && len(w.iov) > 0 {
		if n < len(w.iov[0]) {
			w.iov[0] = w.iov[0][n:]
			return
		}
		n -= len(w.iov[0])
		w.iov = w.iov[1:]
	}
}

// writeBlocking writes what is left of w, waiting for the client up to deadline.
func (c *wsConn) writeBlocking(w *wireBatch, deadline time.Time) error {
	if err := c.nc.SetWriteDeadline(deadline); err != nil {
		return err
	}
	var err error
	if flat := w.flattenFor(c); flat != nil {
		_, err = c.nc.Write(flat)
	} else {
		bufs := net.Buffers(w.iov)
		_, err = bufs.WriteTo(c.nc)
	}
	w.iov = w.iov[:0]
	if err == nil {
		// Cleared, or the pool's next write (tryWrite), which the deadline also governs, would
		// fail once it passes.
		err = c.nc.SetWriteDeadline(time.Time{})
	}
	return err
}

// closeFrame is a close frame's payload.
func closeFrame(code ws.StatusCode, reason string) outFrame {
	return outFrame{op: ws.OpClose, p: ws.NewCloseFrameBody(code, reason)}
}

// linger shuts the sending side and reads and drops what the client still sends, until it
// closes, up to most bytes or for d.
func (c *wsConn) linger(d time.Duration, most int64) {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	_, _ = io.CopyN(io.Discard, c.br, most)
}

// close closes the connection now.
func (c *wsConn) close() error { return c.nc.Close() }

// wake makes a read under way return at once (the session ended).
func (c *wsConn) wake() { _ = c.nc.SetReadDeadline(time.Unix(1, 0)) }
