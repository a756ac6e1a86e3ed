package proxy_test

// Draining a clustered edge through the proxy: goodbyes past the deadline, goroutines that end
// before Shutdown returns. Each test's comment describes the bug it was written for; the test
// fails if that bug comes back.

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// slowOrigin delays Team() while slow is set (a pre-warm that takes long on the next owner).
type slowOrigin struct {
	cache.Origin
	slow *atomic.Bool
}

func (s *slowOrigin) Team(ctx context.Context, team string) (*origin.TeamInfo, error) {
	if s.slow.Load() {
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Origin.Team(ctx, team)
}

// TestDrainPastDeadlineStillSaysGoodbye: drain runs handOver with c.ctx and WarmTimeout
// (30s), not with Shutdown's ctx. When the next owner's pre-warm outlasts the drain deadline,
// drain returns on ctx, cluster.stop cancels c.ctx, handOver returns from its timer wait
// before telling anybody goodbye, and Shutdown returns with the sessions still open: they are
// cut without goodbye when the process exits (all at once, no reconnect hint). The goroutines
// drain started are also not in c.wg, so Shutdown does not wait for them.
func TestDrainPastDeadlineStillSaysGoodbye(t *testing.T) {
	var slow atomic.Bool
	w := newWorld(t, "small", func(c *edge.Config) {
		c.Cache.Origin = &slowOrigin{Origin: c.Cache.Origin, slow: &slow}
	})
	e1 := w.addEdge("edge-1")
	w.addEdge("edge-2")
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2")
	two := ring.New([]string{"edge-1", "edge-2"})
	var teams []string
	for _, id := range w.origin.TeamIDs() {
		if two.Owner(id) == "edge-1" && len(teams) < 4 {
			teams = append(teams, id)
		}
	}
	var mu sync.Mutex
	byes := map[int]string{}
	for i, team := range teams {
		w.dial(p.url, team, w.origin.Users(team)[0].ID, func(o *client.Options) {
			o.OnReconnect = func(r client.Reconnect) {
				if r.Goodbye != nil {
					mu.Lock()
					byes[i] = r.Goodbye.Reason
					mu.Unlock()
				}
			}
		})
	}
	slow.Store(true) // edge-2's pre-warm of edge-1's teams will take 5s
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := e1.srv.Shutdown(ctx)
	t.Logf("Shutdown: %v", err)
	// The goodbyes were sent before Shutdown returned; the clients read them a moment later.
	testkit.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(byes) == len(teams)
	}, "every session to read its goodbye")
	mu.Lock()
	defer mu.Unlock()
	if len(byes) != len(teams) {
		t.Errorf("%d of %d sessions were told goodbye by the time Shutdown returned (%v)", len(byes), len(teams), byes)
	}
	slow.Store(false)
}

// TestDrainGoroutinesEndBeforeShutdown: the handOver goroutines drain starts (and its
// wg.Wait helper) are in no WaitGroup Shutdown waits on.
func TestDrainGoroutinesEndBeforeShutdown(t *testing.T) {
	var slow atomic.Bool
	w := newWorld(t, "small", func(c *edge.Config) {
		c.Cache.Origin = &slowOrigin{Origin: c.Cache.Origin, slow: &slow}
		c.Cluster.Peers = stubbornPeers{c.Cluster.Peers}
	})
	e1 := w.addEdge("edge-1")
	w.addEdge("edge-2")
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2")
	two := ring.New([]string{"edge-1", "edge-2"})
	for _, id := range w.origin.TeamIDs() {
		if two.Owner(id) == "edge-1" {
			w.dial(p.url, id, w.origin.Users(id)[0].ID, nil)
			break
		}
	}
	slow.Store(true)
	defer slow.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	e1.srv.Shutdown(ctx)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "(*cluster).handOver") || strings.Contains(stacks, "(*cluster).drain") {
		t.Fatalf("edge Shutdown returned with drain goroutines still running:\n%s", grep(stacks, "cluster"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// stubbornPeers' Warm takes a second whatever its context says (a NATS request in flight).
type stubbornPeers struct{ edge.Peers }

func (p stubbornPeers) Warm(ctx context.Context, node string, teams []string) error {
	<-time.After(time.Second) // deliberately deaf to ctx
	return p.Peers.Warm(ctx, node, teams)
}
