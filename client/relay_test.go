package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
)

// relay is a WebSocket man in the middle in front of a stack's real edge: it passes every
// frame through unchanged unless a test hooks it, so that a test can make the real edge look
// like a server that fails in a way the edge never does on its own (a boot that never
// answers, an event the client cannot read, a hello that says resumed). Handshakes the edge
// refuses are refused to the client with the same status and body.
type relay struct {
	t       testkit.T
	backend string // the stack's /ws URL
	url     string // the relay's /ws URL, for Options.URL
	srv     *http.Server
	hc      *http.Client

	refuse atomic.Bool  // answer every handshake 503 without asking the edge
	hits   atomic.Int64 // handshakes tried

	mu     sync.Mutex
	hooks  relayHooks
	conns  map[*websocket.Conn]struct{} // both sides of every relayed connection
	closed bool                         // cleanup began: a handshake finishing now is cut
	wg     sync.WaitGroup               // the pumps
}

// relayHooks see the frames going through. Each is called on the goroutine of its direction,
// one frame at a time.
type relayHooks struct {
	// toClient returns what to pass on for one server frame: the frame itself, a rewrite of
	// it, or nothing (nil) to drop it.
	toClient func(frame []byte) []byte
	// toServer returns what to forward for one client frame (nil: swallow it) and what to
	// answer the client with directly (nil: nothing).
	toServer func(frame []byte) (forward, answer []byte)
}

func newRelay(s *stack) *relay {
	s.t.Helper()
	r := &relay{t: s.t, backend: s.url, conns: make(map[*websocket.Conn]struct{}),
		hc: &http.Client{Transport: &http.Transport{}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	r.url = "ws://" + ln.Addr().String() + "/ws"
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	s.t.Cleanup(func() {
		r.srv.Close()
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.cut()
		r.wg.Wait()
		r.hc.CloseIdleConnections()
	})
	return r
}

func (r *relay) setHooks(h relayHooks) {
	r.mu.Lock()
	r.hooks = h
	r.mu.Unlock()
}

func (r *relay) getHooks() relayHooks {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hooks
}

// cut drops every relayed connection at once, with no goodbye: a network failure.
func (r *relay) cut() {
	r.mu.Lock()
	conns := r.conns
	r.conns = make(map[*websocket.Conn]struct{})
	r.mu.Unlock()
	for ws := range conns {
		ws.CloseNow()
	}
}

func (r *relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	if r.refuse.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"ok":false,"error":{"code":"overloaded","message":"relay refusing"}}`)
		return
	}
	u := r.backend
	if req.URL.RawQuery != "" {
		u += "?" + req.URL.RawQuery
	}
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	back, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: r.hc,
		HTTPHeader:   http.Header{"Authorization": req.Header.Values("Authorization")},
		Subprotocols: []string{client.Protocol}})
	if err != nil {
		if resp == nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for _, h := range []string{"Content-Type", "Retry-After"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		if resp.Body != nil {
			io.Copy(w, resp.Body)
		}
		return
	}
	front, err := websocket.Accept(w, req, &websocket.AcceptOptions{Subprotocols: []string{client.Protocol}})
	if err != nil {
		back.CloseNow()
		return
	}
	front.SetReadLimit(-1)
	back.SetReadLimit(-1)
	r.mu.Lock()
	closed := r.closed
	if !closed { // counted under the lock, so never after cleanup's wg.Wait has begun
		r.conns[front], r.conns[back] = struct{}{}, struct{}{}
		r.wg.Add(2)
	}
	r.mu.Unlock()
	if closed { // the pumps would outlive the cleanup that waits for them
		front.CloseNow()
		back.CloseNow()
		return
	}
	// Either side ending ends both: the close status is passed on, so a client sees what
	// the edge said.
	end := func(from error, to *websocket.Conn) {
		if st := websocket.CloseStatus(from); st != -1 {
			var ce websocket.CloseError
			errors.As(from, &ce)
			to.Close(st, ce.Reason)
		}
		front.CloseNow()
		back.CloseNow()
	}
	go func() {
		defer r.wg.Done()
		for {
			_, data, err := back.Read(context.Background())
			if err != nil {
				end(err, front)
				return
			}
			if h := r.getHooks().toClient; h != nil {
				if data = h(data); data == nil {
					continue
				}
			}
			if front.Write(context.Background(), websocket.MessageText, data) != nil {
				end(nil, back)
				return
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		for {
			_, data, err := front.Read(context.Background())
			if err != nil {
				end(err, back)
				return
			}
			var answer []byte
			if h := r.getHooks().toServer; h != nil {
				data, answer = h(data)
			}
			if answer != nil && front.Write(context.Background(), websocket.MessageText, answer) != nil {
				end(nil, back)
				return
			}
			if data != nil && back.Write(context.Background(), websocket.MessageText, data) != nil {
				end(nil, front)
				return
			}
		}
	}()
}

// request is a client frame, as a relay hook reads it.
type request struct {
	ID     int64  `json:"id"`
	Method string `json:"method"`
}

func parseRequest(frame []byte) request {
	var q request
	json.Unmarshal(frame, &q)
	return q
}

// errorReply is the frame of a refused request.
func errorReply(id int64, code string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "reply", "id": id, "ok": false,
		"error": map[string]any{"code": code, "message": "injected by the relay"}})
	return b
}

// editFrame decodes a server frame into its fields, lets edit change them (returning false
// to leave the frame as it was) and encodes the result.
func editFrame(frame []byte, edit func(f map[string]json.RawMessage) bool) []byte {
	var f map[string]json.RawMessage
	if json.Unmarshal(frame, &f) != nil || !edit(f) {
		return frame
	}
	b, err := json.Marshal(f)
	if err != nil {
		return frame
	}
	return b
}
