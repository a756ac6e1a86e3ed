package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-edge/weft/protocol"
)

// Upgrades wraps the proxy's listener so that a connection whose first request is a
// WebSocket upgrade to /ws is served here, not by net/http; every other connection (/api,
// /healthz, /metrics, a /ws upgrade after other requests on a kept-alive connection) goes on
// to the http.Server that serves from the returned listener, bytes untouched.
//
// Setting up a tunnel is the proxy's hot path in a reconnect herd, and net/http's machinery
// around a request it is then told to hand over costs more than the handover: a goroutine
// reading in the background to notice the client leave, which Hijack must wake and wait for,
// and its buffers. Measured on this 2-core machine, one setup at a time, the proxy added
// ~260 µs to a setup against nginx's ~140 µs; without it, see results/fronts.
//
// The returned listener's Close closes ln; the goroutine accepting from ln ends with it. A
// connection still waiting for its first request's head is closed when the Server shuts down.
func (s *Server) Upgrades(ln net.Listener) net.Listener {
	u := &upgradeListener{Listener: ln, s: s, conns: make(chan net.Conn), failed: make(chan struct{})}
	go u.acceptLoop()
	return u
}

// upgradeHeadLimit bounds a first request's head read here; net/http's default is 1 MiB, but
// a WebSocket upgrade is a request line and a few headers with a token.
const upgradeHeadLimit = 64 << 10

// upgradeHeadTimeout bounds the wait for a first request's head, as the http.Server's
// ReadHeaderTimeout does for the requests it reads.
const upgradeHeadTimeout = 10 * time.Second

type upgradeListener struct {
	net.Listener
	s      *Server
	conns  chan net.Conn // for the http.Server
	failed chan struct{} // closed when ln's Accept failed for good; err says why
	err    error
}

func (u *upgradeListener) Accept() (net.Conn, error) {
	select {
	case c := <-u.conns:
		return c, nil
	case <-u.failed:
		return nil, u.err
	}
}

// acceptLoop accepts from the wrapped listener until it fails for good (it was closed), one
// goroutine at a time (each hands accepting on to a new one when it takes a connection). A
// temporary failure (out of descriptors) waits a little, doubling, as net/http's loop does.
func (u *upgradeListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := u.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				u.s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			u.err = err
			close(u.failed)
			return
		}
		if !u.s.track() { // shutting down: nothing new starts
			c.Close()
			continue
		}
		// This goroutine serves c and a new one takes over accepting, rather than the other
		// way round: the connection is served at once on the thread that accepted it, while
		// a goroutine started for it would wait to be scheduled, often on the other core
		// (~35 µs of a setup on 2 cores, measured against one P).
		go u.acceptLoop()
		defer u.s.wg.Done()
		u.first(c, newSetupClock())
		return
	}
}

// isTemporary reports the accept errors a server waits out (EMFILE, ENFILE, ECONNABORTED…),
// which the net package still marks Temporary.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// headReaders are the readers of first requests, back in the pool once the head is read.
var headReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// first looks at the first bytes of c: a WebSocket upgrade to /ws is served here, anything
// else goes to the http.Server with the bytes read so far in front.
//
// A request served here is not cancelled when its client leaves (net/http's background
// reader is what would notice, and avoiding it is the point): a client that gives up during
// the handshake still costs the edge its hello, bounded by the handshake timeout.
func (u *upgradeListener) first(c net.Conn, clock *setupClock) {
	defer func() {
		if p := recover(); p != nil { // as net/http does for its handlers: one connection, not the process
			u.s.log.Error("panic serving a WebSocket upgrade", "remote", c.RemoteAddr().String(), "panic", p,
				"stack", string(debug.Stack()))
			c.Close()
		}
	}()
	c.SetReadDeadline(time.Now().Add(upgradeHeadTimeout))
	// A server that stops ends the wait for a head at once (Shutdown waits for this goroutine).
	stopWait := context.AfterFunc(u.s.ctx, func() { c.SetReadDeadline(time.Now()) })
	// The head is read with raw reads (see pipe_unix.go); a connection handed over is the
	// plain one, for net/http's own use.
	lr := &io.LimitedReader{R: withRawIO(c), N: upgradeHeadLimit}
	br := headReaders.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() {
		br.Reset(nil)
		headReaders.Put(br)
	}()
	start, err := br.Peek(len("GET /ws?"))
	if err != nil {
		stopWait()
		c.Close() // not even a request line within the timeout, or the server is stopping
		return
	}
	if !bytes.Equal(start, []byte("GET /ws?")) && !bytes.Equal(start, []byte("GET /ws ")) {
		if !stopWait() {
			c.Close()
			return
		}
		u.handOver(c, br)
		return
	}
	clock.mark(stageHeadIn)
	req, err := http.ReadRequest(br)
	clock.mark(stageHeadRead)
	if !stopWait() {
		c.Close()
		return
	}
	if err != nil {
		status := http.StatusBadRequest
		if lr.N <= 0 {
			status = http.StatusRequestHeaderFieldsTooLarge
		}
		refuseHead(c, status)
		return
	}
	// What net/http's server checks beyond parsing, so that this path takes no request the
	// other would refuse.
	switch {
	case req.ProtoMajor != 1:
		refuseHead(c, http.StatusHTTPVersionNotSupported)
		return
	case req.ProtoAtLeast(1, 1) && req.Host == "", !validHost(req.Host):
		refuseHead(c, http.StatusBadRequest)
		return
	}
	c.SetReadDeadline(time.Time{})
	req.RemoteAddr = c.RemoteAddr().String()
	req = req.WithContext(withSetupClock(u.s.ctx, clock))
	rw := &rawResponse{c: c, br: br, header: http.Header{}}
	u.s.handleWS(rw, req)
	if !rw.hijacked {
		if rw.status == 0 {
			// The handler said nothing: the server is stopping (its context ended while the
			// request was routed). The client is told so, not sent an empty 200.
			writeError(rw, http.StatusServiceUnavailable, protocol.CodeOverloaded, "proxy shutting down", time.Second)
		}
		rw.finish()
		c.Close()
	}
}

// refuseHead answers a head this path cannot serve as net/http would, and closes c.
func refuseHead(c net.Conn, status int) {
	c.SetWriteDeadline(time.Now().Add(upgradeHeadTimeout))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%d %s",
		status, http.StatusText(status), status, http.StatusText(status))
	c.Close()
}

// validHost reports whether h may be a Host header: the bytes a host, an IP literal and a port
// are made of (what golang.org/x/net/http/httpguts.ValidHostHeader lets through, which
// net/http's server applies).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		b := h[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// handOver gives c to the http.Server, with what br has read of it in front.
func (u *upgradeListener) handOver(c net.Conn, br *bufio.Reader) {
	c.SetReadDeadline(time.Time{})
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		c = &prefixConn{Conn: c, prefix: bytes.Clone(b)}
	}
	select {
	case u.conns <- c:
	case <-u.failed: // the server stopped accepting
		c.Close()
	}
}

// prefixConn is a connection whose first bytes were already read from it: they are read first.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// CloseWrite half-closes the connection underneath, as net/http and a tunnel's half-close
// expect of a TCP connection.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// unwrapped is the connection underneath once its prefix has been read (a hijacked connection
// hands the tunnel the plain socket, whose raw reads hold no buffer while idle); c itself
// while some of the prefix is left.
func (c *prefixConn) unwrapped() net.Conn {
	if len(c.prefix) == 0 {
		return c.Conn
	}
	return c
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// rawResponse is the http.ResponseWriter of a first request served by Upgrades: a refusal is
// written whole, with Connection: close, when the handler returns; an upgrade hijacks the
// connection.
type rawResponse struct {
	c        net.Conn
	br       *bufio.Reader
	header   http.Header
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (w *rawResponse) Header() http.Header { return w.header }

func (w *rawResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *rawResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Hijack hands the connection over; the reader holds what the client sent past its request.
// The reader is only good until the handler returns (it goes back to a pool): the tunnel
// copies what it holds before that.
func (w *rawResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.hijacked = true
	return w.c, bufio.NewReadWriter(w.br, bufio.NewWriterSize(w.c, 64)), nil
}

// finish writes the response the handler gave.
func (w *rawResponse) finish() {
	w.WriteHeader(http.StatusOK)
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 " + strconv.Itoa(w.status) + " " + http.StatusText(w.status) + "\r\n")
	w.header.Del("Connection")
	w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
	w.header.Write(&head)
	head.WriteString("Connection: close\r\n\r\n")
	head.Write(w.body.Bytes())
	w.c.SetWriteDeadline(time.Now().Add(upgradeHeadTimeout))
	w.c.Write(head.Bytes())
}

// track counts a goroutine of a connection not yet a tunnel in the server's wait group, unless
// the server is shutting down (then it says false).
func (s *Server) track() bool {
	s.tunnelMu.Lock()
	defer s.tunnelMu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.wg.Add(1)
	return true
}
