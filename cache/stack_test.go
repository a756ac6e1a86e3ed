package cache_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle keep-alive readers until the transport is closed.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// stack is everything a team load needs, real and in-process: an embedded NATS server with
// JetStream, the reference origin behind an httptest server, the origin client, and Teams.
type stack struct {
	t      *testing.T
	bus    *pubsub.Bus
	origin *reference.Server
	http   *httptest.Server
	client *origin.Client
	teams  *cache.Teams
	world  *reference.World

	// wrap, when set, sees every origin request first (counting, corrupting).
	wrap atomic.Pointer[func(w http.ResponseWriter, r *http.Request, next http.Handler)]

	mu     sync.Mutex
	events map[string][]int64 // seqs seen by OnEvent, per team
	block  chan struct{}      // when non-nil, OnEvent waits on it
}

type stackOpts struct {
	size      string
	stream    pubsub.StreamConfig
	pending   int
	pageLimit int
	timeout   time.Duration
	cache     func(*cache.Config)
}

func newStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	if o.size == "" {
		o.size = "tiny"
	}
	s := &stack{t: t, events: make(map[string][]int64)}
	emb, err := pubsub.NewEmbedded(pubsub.EmbeddedConfig{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := emb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	ctx := context.Background()
	s.bus, err = pubsub.Connect(ctx, pubsub.Config{Embedded: emb, Stream: o.stream, SubPendingMsgs: o.pending,
		GapCheckInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bus.Close)
	size, err := reference.SizeByName(o.size)
	if err != nil {
		t.Fatal(err)
	}
	s.world, err = reference.NewWorld(7, size)
	if err != nil {
		t.Fatal(err)
	}
	s.origin, err = reference.NewServer(reference.ServerConfig{World: s.world, Token: "svc", Publisher: s.bus})
	if err != nil {
		t.Fatal(err)
	}
	s.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := s.wrap.Load(); f != nil {
			(*f)(w, r, s.origin)
			return
		}
		s.origin.ServeHTTP(w, r)
	}))
	t.Cleanup(s.http.Close)
	s.client, err = origin.NewClient(origin.ClientConfig{BaseURL: s.http.URL, Token: "svc", PageLimit: o.pageLimit, Timeout: o.timeout})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cache.Config{Origin: s.client, Feed: s.bus, Hooks: cache.Hooks{OnEvent: s.onEvent}}
	if o.cache != nil {
		o.cache(&cfg)
	}
	s.teams, err = cache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.teams.Start()
	t.Cleanup(func() {
		s.unblock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.teams.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

func (s *stack) onEvent(t *cache.Team, ev *origin.Event, _ cache.Change) {
	s.mu.Lock()
	s.events[t.ID()] = append(s.events[t.ID()], ev.Seq)
	block := s.block
	s.mu.Unlock()
	if block != nil {
		<-block
	}
}

func (s *stack) blockEvents() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.block = make(chan struct{})
}

func (s *stack) unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.block != nil {
		close(s.block)
		s.block = nil
	}
}

func (s *stack) seen(team string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.events[team]...)
}

func (s *stack) setWrap(f func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	if f == nil {
		s.wrap.Store(nil)
		return
	}
	s.wrap.Store(&f)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}
