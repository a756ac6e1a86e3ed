package client_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/origin/reference"
)

// TestRenderLiveWorldFromStoreOnly: clients that render every message only from their Store
// (sender and every mention resolved, and the channel) manage 100% of 10,000 messages of a
// live small team, with its profile changes, joins, leaves, renames and new channels going on,
// without one users.info at the edge. The clients are chosen so that their channels cover the
// team's, so every message of the stream reaches at least one of them.
func TestRenderLiveWorldFromStoreOnly(t *testing.T) {
	const want = 10000
	reg := prometheus.NewRegistry()
	s := newStack(t, "small", func(c *edge.Config) { c.Registry = reg })

	// Greedy cover of the team's channels by their members.
	uncovered := map[string]bool{}
	for _, ch := range s.origin.Channels(s.team) {
		if !ch.IsArchived {
			uncovered[ch.ID] = true
		}
	}
	var users []string
	for len(uncovered) > 0 {
		best, gain := "", 0
		for _, u := range s.origin.Users(s.team) {
			if u.Deleted || slices.Contains(users, u.ID) {
				continue
			}
			n := 0
			for _, ch := range s.origin.ChannelsOf(s.team, u.ID) {
				if uncovered[ch] {
					n++
				}
			}
			if n > gain {
				best, gain = u.ID, n
			}
		}
		if gain == 0 {
			break // channels with no active member: nobody can see them
		}
		users = append(users, best)
		for _, ch := range s.origin.ChannelsOf(s.team, best) {
			delete(uncovered, ch)
		}
	}

	var mu sync.Mutex
	seen := map[int64]bool{} // message seqs rendered by some client
	deliveries, unrenderable := 0, 0
	var firstBad string
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the clients' own cleanups (LIFO) have closed them
	for _, u := range users {
		c := s.dial(u, nil)
		wg.Go(func() {
			for ev := range c.Events() {
				if ev.Type != client.EventMessage {
					continue
				}
				ok := c.Store().Renderable(ev)
				mu.Lock()
				deliveries++
				if !ok {
					unrenderable++
					if firstBad == "" {
						us, ch := c.Store().Missing(ev)
						firstBad = string(ev.Raw) + " lacks users [" + join(us) + "] channel [" + ch + "]"
					}
				}
				seen[ev.Seq] = true
				if len(seen) >= want {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		})
	}

	act, err := reference.NewActivity(reference.ActivityConfig{Server: s.origin, Rate: 3000, Teams: []string{s.team}, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); act.Run(ctx) }()
	select {
	case <-enough:
	case <-time.After(120 * time.Second):
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		t.Errorf("only %d distinct messages rendered in 120s", n)
	}
	stop()
	<-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d clients covering the team's channels; %d distinct messages, %d deliveries; activity made %d events",
		len(users), len(seen), deliveries, act.Stats().Events)
	if unrenderable > 0 {
		t.Errorf("%d of %d deliveries could not be rendered from the Store; first: %s", unrenderable, deliveries, firstBad)
	}
	if n := requestsOf(t, reg, "users.info"); n != 0 {
		t.Errorf("%v users.info requests at the edge, want none", n)
	}
}

// requestsOf sums the edge's weft_edge_requests_total for method, every outcome.
func requestsOf(t *testing.T, reg *prometheus.Registry, method string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != "weft_edge_requests_total" {
			continue
		}
		found = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && l.GetValue() == method {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	if !found {
		t.Fatal("no weft_edge_requests_total in the edge's registry")
	}
	return sum
}

func join(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ","
		}
		out += id
	}
	return out
}
