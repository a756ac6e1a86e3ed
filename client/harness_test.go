package client_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

const testSecret = "client-test-secret-0123456789"

// tb is what the stack needs of a test: testing.TB, or exampleTB for an Example.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// stack is a whole weft in this process, real parts only: embedded NATS with JetStream and the
// reference origin behind an httptest server (testkit/backend), and an edge node behind a listener that stays
// put while the node behind it is restarted: a client reconnects to the same URL and meets a
// new node, with an empty cache, that must reload the team and replay from JetStream.
type stack struct {
	t      tb
	bus    *pubsub.Bus
	origin *origin.Server
	oc     *origin.Client
	keys   *token.Keys
	team   string
	cfg    func(*edge.Config)

	edge   atomic.Pointer[edge.Server] // nil while restarting: /ws answers 503
	srv    *http.Server
	url    string
	hc     *http.Client
	wsHits atomic.Int64 // handshakes tried

	mu       sync.Mutex
	hijacked []net.Conn // the WebSocket connections, so a crash can cut them
	onWS     func()     // called at every handshake attempt, before it is served
}

// newStack starts a stack on a world of the named size.
func newStack(t tb, size string, cfg func(*edge.Config)) *stack {
	t.Helper()
	s := &stack{t: t, cfg: cfg}
	s.bus = backend.Bus(t, backend.NATS(t), pubsub.Config{})
	o := backend.NewOrigin(t, backend.OriginConfig{World: backend.World(t, 11, size), Publisher: s.bus})
	s.origin, s.oc = o.Server, o.Client
	var err error
	s.keys, err = token.New([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	s.team = s.origin.TeamIDs()[0]

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.url = "ws://" + ln.Addr().String() + "/ws"
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ConnState: s.connState}
	go s.srv.Serve(ln)
	s.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	s.startEdge()
	t.Cleanup(func() {
		s.stopEdge(false)
		s.srv.Close()
		s.hc.CloseIdleConnections()
	})
	return s
}

func (s *stack) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" {
		s.wsHits.Add(1)
		s.mu.Lock()
		hook := s.onWS
		s.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	e := s.edge.Load()
	if e == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"ok": false,
			"error": map[string]any{"code": "overloaded", "message": "restarting"}})
		return
	}
	e.ServeHTTP(w, r)
}

func (s *stack) connState(c net.Conn, st http.ConnState) {
	if st == http.StateHijacked {
		s.mu.Lock()
		s.hijacked = append(s.hijacked, c)
		s.mu.Unlock()
	}
}

func (s *stack) startEdge() {
	cfg := edge.Config{Cache: cache.Config{Origin: s.oc, Feed: s.bus}, Replay: s.bus, Tokens: s.keys,
		Node: "edge-client-test", DrainSpread: 300 * time.Millisecond,
		ConnectRate: -1, TeamConnectRate: -1} // 1,000 clients of one team reconnect at once in the spread test
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	e, err := edge.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	e.Start()
	s.edge.Store(e)
}

// stopEdge stops the node: gracefully (goodbye draining, each session told a reconnect time
// within DrainSpread) or as a crash (every connection cut with no goodbye, then the node's
// insides stopped). /ws answers 503 Retry-After until startEdge.
func (s *stack) stopEdge(crash bool) {
	e := s.edge.Load()
	if e == nil {
		return
	}
	if crash {
		s.edge.Store(nil)
		s.mu.Lock()
		cut := s.hijacked
		s.hijacked = nil
		s.mu.Unlock()
		for _, c := range cut {
			c.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		s.t.Errorf("edge shutdown: %v", err)
	}
	s.edge.Store(nil)
}

func (s *stack) restart(crash bool) {
	s.stopEdge(crash)
	s.startEdge()
}

func (s *stack) token(user string) string {
	tok, err := s.keys.Issue(s.team, user, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

func (s *stack) opts(user string) client.Options {
	return client.Options{URL: s.url, Token: s.token(user), HTTPClient: s.hc,
		Backoff: client.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}}
}

// dial connects a client as user and closes it at cleanup.
func (s *stack) dial(user string, edit func(*client.Options)) *client.Client {
	s.t.Helper()
	o := s.opts(user)
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, o)
	if err != nil {
		s.t.Fatalf("dial as %s: %v", user, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// members returns the active members of channel ch, in the origin's order.
func (s *stack) members(ch string) []string {
	var out []string
	for _, m := range s.origin.Memberships(s.team) {
		if u, _ := s.origin.User(s.team, m.User); m.Channel == ch && !u.Deleted {
			out = append(out, m.User)
		}
	}
	return out
}

// busyChannel returns a live public channel with at least n members.
func (s *stack) busyChannel(n int) (string, []string) {
	s.t.Helper()
	for _, c := range s.origin.Channels(s.team) {
		if c.IsPrivate || c.IsArchived {
			continue
		}
		if m := s.members(c.ID); len(m) >= n {
			return c.ID, m
		}
	}
	s.t.Fatalf("no public channel with %d members", n)
	return "", nil
}

// post publishes a message through the origin (which publishes it on NATS) and returns it.
func (s *stack) post(ch, user, text string, mentions ...string) *origin.Event {
	s.t.Helper()
	ev, err := s.origin.PostMessage(context.Background(), s.team, ch, user, text, mentions)
	if err != nil {
		s.t.Fatalf("post: %v", err)
	}
	return ev
}

// next reads the next event of c, failing after 10s.
func next(t testing.TB, c *client.Client) *client.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatal("event stream closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10s")
	}
	return nil
}

// nextOf skips to c's next event of type typ.
func nextOf(t testing.TB, c *client.Client, typ string) *client.Event {
	t.Helper()
	for {
		if ev := next(t, c); ev.Type == typ {
			return ev
		}
	}
}
