package cache_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// stack is everything a team load needs, real and in-process (testkit/backend): an embedded
// NATS server with JetStream, the reference origin behind an httptest server, its client, and
// Teams.
type stack struct {
	t      *testing.T
	bus    *pubsub.Bus
	origin *backend.Origin
	client *origin.Client
	teams  *cache.Teams
	world  *reference.World

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
	s.bus = backend.Bus(t, backend.NATS(t), pubsub.Config{Stream: o.stream, SubPendingMsgs: o.pending,
		GapCheckInterval: 200 * time.Millisecond})
	s.world = backend.World(t, 7, o.size)
	s.origin = backend.NewOrigin(t, backend.OriginConfig{World: s.world, Publisher: s.bus,
		Client: origin.ClientConfig{PageLimit: o.pageLimit, Timeout: o.timeout}})
	s.client = s.origin.Client
	cfg := cache.Config{Origin: s.client, Feed: s.bus, Hooks: cache.Hooks{OnEvent: s.onEvent}}
	if o.cache != nil {
		o.cache(&cfg)
	}
	var err error
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
	s.origin.SetWrap(f)
}

// TestShutdownAfterASpentDeadline: a caller whose deadline went on earlier steps (an edge's
// drain) still shuts a set down cleanly: every goroutine is told to stop at once, and Shutdown
// reports success once they have, not the context's end. (An edge's shutdown failed with
// "cache: shutdown: context deadline exceeded" when its drain had used the whole deadline.)
func TestShutdownAfterASpentDeadline(t *testing.T) {
	s := newStack(t, stackOpts{})
	team := s.origin.TeamIDs()[0]
	tm, err := s.teams.Acquire(context.Background(), team)
	if err != nil {
		t.Fatal(err)
	}
	tm.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.teams.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a spent context: %v", err)
	}
}
