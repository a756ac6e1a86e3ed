package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/protocol"
)

// Protocol is the WebSocket subprotocol of docs/protocol.md.
const Protocol = protocol.Subprotocol

// maxInFlight bounds the requests one connection has sent and not had answered; callers past
// it wait here. The server answers a connection's requests one at a time, in order, so more
// in flight would not be answered sooner: the bound only keeps a burst of calls from queueing
// unboundedly on the socket. One slot is kept for the heartbeat's ping, so that a ping never
// waits for a slot behind a burst (and times out there, dropping a healthy connection).
const maxInFlight = 64

// ErrDisconnected is returned by a request whose connection ended before its reply came. Every
// method of the protocol only reads, so retrying is safe.
var ErrDisconnected = errors.New("weft: connection lost before the reply")

// ErrClosed is returned by requests on a closed Client.
var ErrClosed = errors.New("weft: client closed")

// conn is one WebSocket connection: its hello, its requests in flight and its read loop. The
// Client's run loop owns it: it dials it, runs its read loop and waits for it to end.
type conn struct {
	c     *Client
	ws    *websocket.Conn
	hello Hello
	at    int // which of the client's URLs it was dialed at

	slots  chan struct{} // one per request in flight but the heartbeat's
	nextID atomic.Int64
	// users counts the requests that were handed this connection (by Client.current, or the
	// boot) and are not done: while there are any, a full event queue does not drop it (see
	// Client.received), so that their replies, which may be behind those events, arrive.
	users atomic.Int64

	mu      sync.Mutex
	pending map[int64]chan reply
	goodbye *Goodbye
	err     error // why the connection ended; set before done is closed

	done chan struct{} // closed when the read loop has ended
}

type reply struct {
	result json.RawMessage
	err    *Error
}

// frame is every server frame's envelope; which fields are set depends on type.
type frame struct {
	Type string `json:"type"`

	// reply
	ID     *int64          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`

	// event; annotations are read entry by entry (see decodeAnnotations), so that one bad
	// entry cannot make the whole frame unreadable
	Seq         int64           `json:"seq"`
	Cut         string          `json:"cut"`
	Event       json.RawMessage `json:"event"`
	Annotations json.RawMessage `json:"annotations"`

	// goodbye
	Reason           string `json:"reason"`
	ReconnectAfterMS int64  `json:"reconnect_after_ms"`
}

// dialError is a failed handshake, with what the server said about coming back.
type dialError struct {
	err   error
	hint  retryHint
	bye   *Goodbye // the server turned us away with a goodbye instead of a hello
	fatal bool     // the server refused who we are: retrying cannot help
	// unreachable: nothing of weft answered at this URL, so a client with several moves to
	// the next (see unreachable).
	unreachable bool
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial opens a connection to the client's URL at, resuming after since when resume is set, and
// reads its hello.
func (c *Client) dial(ctx context.Context, at int, since int64, resume bool) (*conn, error) {
	tok, err := c.token(ctx)
	if err != nil {
		// Not fatal: a token service can be down for a while, like an edge. Only the server
		// refusing the token says that retrying cannot help.
		return nil, &dialError{err: fmt.Errorf("weft: token: %w", err)}
	}
	u := c.urls[at]
	if resume {
		q := u.Query()
		q.Set("since", strconv.FormatInt(since, 10))
		u.RawQuery = q.Encode()
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{
		HTTPClient:   c.opts.HTTPClient,
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + tok}},
		Subprotocols: []string{Protocol},
	})
	if err != nil {
		return nil, handshakeError(err, resp)
	}
	ws.SetReadLimit(c.opts.ReadLimit)
	if ws.Subprotocol() != Protocol {
		ws.CloseNow()
		return nil, &dialError{err: fmt.Errorf("weft: the server chose subprotocol %q, not %q", ws.Subprotocol(), Protocol)}
	}
	_, data, err := ws.Read(dctx)
	var f struct {
		Hello                   // its Type is the frame's: a goodbye's too
		Reason           string `json:"reason"`
		ReconnectAfterMS int64  `json:"reconnect_after_ms"`
	}
	if err == nil {
		if err = json.Unmarshal(data, &f); err == nil && f.Type == protocol.FrameGoodbye {
			// Turned away before any session began (the edge does not own our team: moved).
			// Honoured like any goodbye: a moved client comes back at once.
			ws.CloseNow()
			bye := &Goodbye{Type: f.Type, Reason: f.Reason, ReconnectAfterMS: f.ReconnectAfterMS}
			return nil, &dialError{err: fmt.Errorf("weft: the server said goodbye %q before hello", f.Reason), bye: bye,
				hint: retryHint{after: time.Duration(f.ReconnectAfterMS) * time.Millisecond, goodbye: true}}
		}
		if err == nil && f.Type != protocol.FrameHello {
			err = fmt.Errorf("first frame %.200q is not a hello", data)
		}
	}
	if err != nil {
		ws.CloseNow()
		return nil, &dialError{err: fmt.Errorf("weft: reading hello: %w", err)}
	}
	c.stats.bytesRead.Add(int64(len(data)))
	return &conn{c: c, ws: ws, hello: f.Hello, at: at, slots: make(chan struct{}, maxInFlight-1),
		pending: make(map[int64]chan reply), done: make(chan struct{})}, nil
}

// handshakeError reads a refused handshake: its JSON error, and Retry-After for a 503.
func handshakeError(err error, resp *http.Response) error {
	if resp == nil {
		return &dialError{err: fmt.Errorf("weft: dial: %w", err), unreachable: true}
	}
	e := &Error{Code: CodeInternal, Status: resp.StatusCode}
	weft := false // the body is weft's error: a weft process answered
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		var b struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(body, &b) == nil && b.Error != nil && b.Error.Code != "" {
			e.Code, e.Message, e.RetryAfterMS = b.Error.Code, b.Error.Message, b.Error.RetryAfterMS
			weft = true
		} else {
			e.Message = string(bytes.TrimSpace(body))
		}
	}
	if e.RetryAfterMS <= 0 {
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			e.RetryAfterMS = int64(s) * 1000
		}
	}
	return &dialError{err: e, hint: retryHint{after: e.RetryAfter()},
		fatal:       resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden,
		unreachable: unreachable(resp.StatusCode, weft)}
}

// unreachable says whether a refused handshake means that no weft answered at its URL: a
// gateway's 502, 503 or 504 with a body of its own (a load balancer with no healthy proxy
// behind it). A dial that got no HTTP answer at all (refused, reset, no DNS name, TLS failure,
// nothing within DialTimeout) is unreachable too; handshakeError says so before asking.
//
// Whatever weft itself answered is not: its 503 overloaded, 429 rate_limited, 502 and 504
// come with retry_after_ms from a region that is up, pacing its clients or waiting for its
// edges (and failing over to another region itself when it has none, --fallback-regions).
// Moving its clients elsewhere then would carry the overload to the next region and undo the
// pacing; they retry the same URL after the time they were given.
func unreachable(status int, weft bool) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return !weft
	}
	return false
}

// call sends one request on the connection, once a slot is free, and waits for its reply.
func (cn *conn) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	select {
	case cn.slots <- struct{}{}:
	case <-cn.done:
		return nil, ErrDisconnected
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-cn.slots }()
	return cn.roundTrip(ctx, method, params)
}

// roundTrip sends one request and waits for its reply; the caller holds a slot (or is the
// heartbeat, which has one of its own).
func (cn *conn) roundTrip(ctx context.Context, method string, params any) (json.RawMessage, error) {
	id := cn.nextID.Add(1)
	var p []byte
	if params != nil {
		var err error
		if p, err = json.Marshal(params); err != nil {
			return nil, fmt.Errorf("weft: %s params: %w", method, err)
		}
	}
	b := protocol.AppendRequest(make([]byte, 0, 128), id, method, p)

	ch := make(chan reply, 1)
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return nil, ErrDisconnected
	}
	cn.pending[id] = ch
	cn.mu.Unlock()
	forget := func() {
		cn.mu.Lock()
		delete(cn.pending, id)
		cn.mu.Unlock()
	}
	if err := cn.ws.Write(ctx, websocket.MessageText, b); err != nil {
		forget()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrDisconnected, err)
	}
	cn.c.stats.requests.Add(1)
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.result, nil
	case <-cn.done:
		return nil, ErrDisconnected
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// readLoop reads frames until the connection ends: replies go to their callers, events to the
// Client, a goodbye is kept for the run loop. It closes done on its way out.
func (cn *conn) readLoop(ctx context.Context) {
	var err error
	for {
		var data []byte
		if _, data, err = cn.ws.Read(ctx); err != nil {
			break
		}
		cn.c.stats.bytesRead.Add(int64(len(data)))
		var f frame
		if jerr := json.Unmarshal(data, &f); jerr != nil {
			// A server that sends garbage is broken; a client that keeps going on a stream it
			// cannot read would hand out holes. Reconnect (and resume) instead.
			err = fmt.Errorf("weft: unreadable frame %.120q: %w", data, jerr)
			cn.ws.Close(websocket.StatusProtocolError, "unreadable frame")
			break
		}
		switch f.Type {
		case protocol.FrameReply:
			cn.reply(&f)
		case protocol.FrameEvent:
			if err = cn.c.received(cn, &f); err != nil {
				cn.ws.Close(websocket.StatusPolicyViolation, "client event queue full")
			}
		case protocol.FrameGoodbye:
			cn.mu.Lock()
			cn.goodbye = &Goodbye{Type: f.Type, Reason: f.Reason, ReconnectAfterMS: f.ReconnectAfterMS}
			cn.mu.Unlock()
		default:
			// Additive protocol changes (new frame types) are ignored, as the protocol asks.
		}
		if err != nil {
			break
		}
	}
	cn.mu.Lock()
	cn.err = err
	cn.pending = nil
	cn.mu.Unlock()
	cn.ws.CloseNow()
	close(cn.done)
}

func (cn *conn) reply(f *frame) {
	if f.ID == nil {
		// An error the server could not tie to a request (it could not read our id): nothing
		// waits for it. Worth a log line: it means this client sent something broken.
		cn.c.log.Warn("weft: reply without id", "error", f.Error)
		return
	}
	cn.mu.Lock()
	ch := cn.pending[*f.ID]
	delete(cn.pending, *f.ID)
	cn.mu.Unlock()
	if ch == nil {
		return // its caller gave up
	}
	r := reply{result: f.Result}
	if !f.OK {
		r.err = f.Error
		if r.err == nil {
			r.err = &Error{Code: CodeInternal, Message: "reply with ok false and no error"}
		}
	}
	ch <- r
}

// heartbeat pings every interval while the connection is up, and closes a connection whose
// ping goes unanswered for an interval: a dead peer is found in bounded time, not at the next
// request. It returns when the connection ends.
func (cn *conn) heartbeat(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-cn.done:
			return
		case <-ctx.Done():
			return
		}
		// The ping uses the slot kept for it (see maxInFlight), so its deadline measures only
		// the peer's answer, never a wait behind slow requests.
		pctx, cancel := context.WithTimeout(ctx, every)
		_, err := cn.roundTrip(pctx, "ping", nil)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil { // no reply at all: an error reply is a live peer
			cn.c.log.Warn("weft: heartbeat failed, reconnecting", "node", cn.hello.Node, "error", err)
			cn.ws.CloseNow()
			return
		}
	}
}

// endedBy returns the goodbye, if one came, and why the connection ended.
func (cn *conn) endedBy() (*Goodbye, error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.goodbye, cn.err
}

// parseURL accepts ws(s):// and http(s):// URLs; a URL with no path gets /ws.
func parseURL(raw string) (*url.URL, error) {
	u, err := normalURL(raw)
	if err != nil {
		return nil, fmt.Errorf("weft: %w", err)
	}
	return u, nil
}

// normalURL is parseURL without the package's prefix on its errors, for parseURLs to put its own.
func normalURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("URL %q: scheme must be ws, wss, http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u, nil
}
