package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

const testSecret = "client-test-secret-0123456789"

// stack is a whole weft in this process, real parts only (testkit/backend and testkit/stack):
// embedded NATS with JetStream, the reference origin behind an httptest server, and an edge
// node behind a listener that stays put while the node behind it is restarted: a client
// reconnects to the same URL and meets a new node, with an empty cache, that must reload the
// team and replay from JetStream.
type stack struct {
	t      testkit.T // a test, or exampleTB for an Example
	bus    *pubsub.Bus
	world  *backend.Origin // the origin's server, for more edges (addEdge)
	origin *reference.Server
	keys   *token.Keys
	team   string
	edge   *wstack.Edge
	url    string // the edge's /ws
	hc     *http.Client
}

// newStack starts a stack on a world of the named size.
func newStack(t testkit.T, size string, cfg func(*edge.Config)) *stack {
	t.Helper()
	s := &stack{t: t}
	s.bus = backend.Bus(t, backend.NATS(t), pubsub.Config{})
	o := backend.NewOrigin(t, backend.OriginConfig{World: backend.World(t, 11, size), Publisher: s.bus})
	s.world, s.origin = o, o.Server
	s.keys = wstack.Keys(t, testSecret)
	s.team = s.origin.TeamIDs()[0]
	s.edge = wstack.StartEdge(t, func(string) edge.Config {
		c := wstack.EdgeConfig(o, s.bus, s.keys, "edge-client-test")
		if cfg != nil {
			cfg(&c)
		}
		return c
	})
	s.url = s.edge.URL("ws") + "/ws"
	s.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(s.hc.CloseIdleConnections)
	return s
}

// addEdge starts another edge node on s's NATS and origin, named node: one more region's edge,
// with a cache of its own fed by the same event stream, so that a team's seqs are the same on
// both. It is stopped at cleanup.
func (s *stack) addEdge(node string) *wstack.Edge {
	s.t.Helper()
	return wstack.StartEdge(s.t, func(string) edge.Config { return wstack.EdgeConfig(s.world, s.bus, s.keys, node) })
}

// stopEdge stops the node; with crash its connections are cut first, without a goodbye.
func (s *stack) stopEdge(crash bool) {
	if crash {
		s.edge.Crash()
	}
	if err := s.edge.Stop(); err != nil {
		s.t.Errorf("%v", err)
	}
}

func (s *stack) startEdge() { s.edge.Start() }

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
