package proxy_test

// A session whose team is still loading when the ring gives the team away is moved too. Each test's comment
// describes the bug it was written for; the test fails if that bug comes back.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// gatedOrigin holds the load of one team until released.
type gatedOrigin struct {
	cache.Origin
	team    string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gatedOrigin) Team(ctx context.Context, team string) (*origin.TeamInfo, error) {
	if team == g.team {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Origin.Team(ctx, team)
}

// TestSessionLoadingDuringRingChangeMoves: ws.go checks ownership, then waits for the team load
// (Acquire), then registers the session in the hub. A ring change while the load is under way
// finds no session of that team in claimMoves (it skips hubs without sessions), so nothing
// ever moves the session that registers afterwards: the team stays on an edge the ring no
// longer gives it to, while new clients of the team go to the new owner.
func TestSessionLoadingDuringRingChangeMoves(t *testing.T) {
	two, three := ring.New([]string{"edge-1", "edge-2"}), ring.New([]string{"edge-1", "edge-2", "edge-3"})
	var g *gatedOrigin
	w := newWorld(t, "small", nil)
	var team string
	for _, id := range w.origin.TeamIDs() {
		if two.Owner(id) != "edge-3" && three.Owner(id) == "edge-3" {
			team = id
			break
		}
	}
	g = &gatedOrigin{team: team, entered: make(chan struct{}), release: make(chan struct{})}
	w.edgeFn = func(c *edge.Config) {
		g.Origin = c.Cache.Origin
		c.Cache.Origin = g
	}
	w.addEdge("edge-1")
	w.addEdge("edge-2")
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2")

	var c *client.Client
	done := make(chan struct{})
	go func() {
		defer close(done)
		c = w.dial(p.url, team, w.origin.Users(team)[0].ID, func(o *client.Options) { o.DialTimeout = 20 * time.Second })
	}()
	<-g.entered // the first connection is past the ownership check, loading the team on its old owner
	w.addEdge("edge-3")
	w.waitRing("edge-1", "edge-2", "edge-3")
	close(g.release)
	<-done
	t.Logf("connected to %s; owner now %s", c.Hello().Node, three.Owner(team))
	// MoveSpread is 1s in the harness; the bound is the kit's, for a busy machine.
	testkit.EventuallyOr(t, testkit.Within, func() bool { return c.Hello().Node == "edge-3" },
		"the session to move to edge-3, its team's new owner", func() {
			t.Logf("team %s: session still on %s", team, c.Hello().Node)
		})
}
