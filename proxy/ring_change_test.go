package proxy_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/protocol"
)

// fleet is a set of clients, one per (team, user), with their event recorders and the time
// each was told goodbye.
type fleet struct {
	clients []*client.Client
	teams   []string
	recs    []*recorder
	mu      sync.Mutex
	byes    map[int][]time.Time // client index → goodbye receipt times
	reasons map[int][]string    // client index → goodbye reasons, in order
}

func (w *world) fleet(teams []string, perTeam int, proxies ...*proxyNode) *fleet {
	f := &fleet{byes: map[int][]time.Time{}, reasons: map[int][]string{}}
	for _, team := range teams {
		for u := range perTeam {
			i := len(f.clients)
			p := proxies[i%len(proxies)]
			c := w.dial(p.url, team, w.origin.Users(team)[u].ID, func(o *client.Options) {
				o.OnReconnect = func(r client.Reconnect) {
					if r.Goodbye != nil {
						f.mu.Lock()
						f.byes[i] = append(f.byes[i], time.Now())
						f.reasons[i] = append(f.reasons[i], r.Goodbye.Reason)
						f.mu.Unlock()
					}
				}
			})
			f.clients = append(f.clients, c)
			f.teams = append(f.teams, team)
			f.recs = append(f.recs, record(c))
		}
	}
	return f
}

// events publishes n team-wide events on each team and returns their seqs by team.
func (w *world) events(teams []string, n int, into map[string][]int64) {
	for _, team := range teams {
		for range n {
			into[team] = append(into[team], w.teamEvent(team))
		}
	}
}

// checkNoLoss waits until every client has every event of its team, then fails on any
// duplicate or out-of-order event.
func (f *fleet) checkNoLoss(t *testing.T, want map[string][]int64) {
	t.Helper()
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		for i, r := range f.recs {
			if !r.has(want[f.teams[i]]) {
				return false
			}
		}
		return true
	}, "every client to have every event of its team")
	for i, r := range f.recs {
		if p := r.problems(); len(p) > 0 {
			t.Errorf("client %d (team %s): %v", i, f.teams[i], p)
		}
	}
}

// TestEdgeKilled: an edge is killed (connections cut, no goodbye, no more announcements).
// Its clients reconnect through the proxies, which fail over to the next owner at once; every
// client resumes on the owner the surviving ring gives its team and loses no event.
func TestEdgeKilled(t *testing.T) {
	w := newWorld(t, "small", nil)
	for i := 1; i <= 3; i++ {
		w.addEdge(fmt.Sprintf("edge-%d", i))
	}
	p1, p2 := w.addProxy(), w.addProxy()
	w.waitRing("edge-1", "edge-2", "edge-3")
	teams := w.origin.TeamIDs()[:24]
	f := w.fleet(teams, 2, p1, p2)
	victim := p1.srv.Membership().Owner(teams[0])
	var onVictim []int
	for i, c := range f.clients {
		if c.Hello().Node == victim {
			onVictim = append(onVictim, i)
		}
	}
	want := map[string][]int64{}
	w.events(teams, 2, want)

	w.stopEdge(w.edges[victim], true)
	w.events(teams, 2, want) // while the clients are away
	survivors := []string{}
	for _, n := range []string{"edge-1", "edge-2", "edge-3"} {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	after := ring.New(survivors)
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		for _, i := range onVictim {
			h := f.clients[i].Hello()
			if h.Node == victim || !h.Resumed {
				return false
			}
		}
		return true
	}, "the victim's clients to resume elsewhere")
	for _, i := range onVictim {
		if got, want := f.clients[i].Hello().Node, after.Owner(f.teams[i]); got != want {
			t.Errorf("client %d of team %s resumed on %s, owner %s", i, f.teams[i], got, want)
		}
	}
	w.events(teams, 2, want)
	f.checkNoLoss(t, want)
	for i, c := range f.clients {
		if c.Hello().Node != victim && c.Stats().Connects != 1 && !contains(onVictim, i) {
			t.Errorf("client %d of a surviving edge reconnected (%+v)", i, c.Stats())
		}
	}
	w.waitRing(survivors...)
	t.Logf("%d of %d clients were on %s; all resumed on the survivors", len(onVictim), len(f.clients), victim)
}

func contains(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestEdgeJoinsThenDrains: a third edge joins. Only the teams the new ring gives it move;
// each is loaded on it before the first of its sessions is told goodbye moved, and the
// goodbyes are spread over the move window. Then it drains: the same in reverse.
func TestEdgeJoinsThenDrains(t *testing.T) {
	w := newWorld(t, "small", nil)
	w.addEdge("edge-1")
	w.addEdge("edge-2")
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2")
	two, three := ring.New([]string{"edge-1", "edge-2"}), ring.New([]string{"edge-1", "edge-2", "edge-3"})
	var moving, staying []string
	for _, team := range w.origin.TeamIDs() {
		o2, o3 := two.Owner(team), three.Owner(team)
		switch {
		case o2 != o3 && o3 != "edge-3":
			t.Fatalf("team %s moves from %s to %s, not to the new edge", team, o2, o3)
		case o2 != o3 && len(moving) < 8:
			moving = append(moving, team)
		case o2 == o3 && len(staying) < 8:
			staying = append(staying, team)
		}
	}
	teams := append(append([]string(nil), moving...), staying...)
	f := w.fleet(teams, 2, p)
	want := map[string][]int64{}
	w.events(teams, 1, want)

	joinedAt := time.Now()
	e3 := w.addEdge("edge-3")
	w.events(teams, 1, want)
	w.waitRing("edge-1", "edge-2", "edge-3")
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		for i, c := range f.clients {
			if i < 2*len(moving) && (c.Hello().Node != "edge-3" || !c.Hello().Resumed) {
				return false
			}
		}
		return true
	}, "the moved teams' clients on edge-3")
	w.events(teams, 1, want)
	f.checkNoLoss(t, want)
	var first, last time.Time
	for i, c := range f.clients {
		team := f.teams[i]
		if i >= 2*len(moving) {
			if c.Stats().Connects != 1 {
				t.Errorf("client of team %s, which did not move, reconnected: %+v", team, c.Stats())
			}
			if _, ok := e3.loads.Load(team); ok {
				t.Errorf("team %s, which did not move, was loaded on edge-3", team)
			}
			continue
		}
		loaded, ok := e3.loads.Load(team)
		f.mu.Lock()
		byes := f.byes[i]
		f.mu.Unlock()
		if !ok || len(byes) == 0 {
			t.Fatalf("team %s: loaded on edge-3 %v, goodbyes %v", team, ok, byes)
		}
		if !loaded.(time.Time).Before(byes[0]) {
			t.Errorf("team %s: loaded on edge-3 at +%v, after its session was moved at +%v",
				team, loaded.(time.Time).Sub(joinedAt), byes[0].Sub(joinedAt))
		}
		if first.IsZero() || byes[0].Before(first) {
			first = byes[0]
		}
		if byes[0].After(last) {
			last = byes[0]
		}
	}
	// How the goodbyes are spread over the window is the edge's plan (edge's TestPlanMovesSpread):
	// the times they arrive here depend on the machine's load, so they are only logged.
	t.Logf("join: %d teams moved to edge-3, goodbyes spread over %v", len(moving), last.Sub(first))

	// Drain edge-3: its teams go back to their owners in the two-edge ring, pre-warmed there.
	w.stopEdge(e3, false)
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		for i, c := range f.clients {
			if i < 2*len(moving) && (c.Hello().Node != two.Owner(f.teams[i]) || !c.Hello().Resumed) {
				return false
			}
		}
		return true
	}, "the moved teams' clients back on the two edges")
	w.events(teams, 1, want)
	f.checkNoLoss(t, want)
	// Each moved client was told goodbye once for the join and once for the drain. While the
	// proxies' and the edges' rings converge (each hears an announcement on its own), a
	// reconnect can still reach the old owner, which upgrades it and says goodbye moved again:
	// an extra hop, harmless (nothing lost, checked above), so extra goodbyes may only be moved.
	for i := range 2 * len(moving) {
		f.mu.Lock()
		reasons := append([]string(nil), f.reasons[i]...)
		f.mu.Unlock()
		if len(reasons) < 2 {
			t.Errorf("client %d: goodbyes %v, want one for the join and one for the drain", i, reasons)
		}
		for _, r := range reasons {
			if r != protocol.ReasonMoved && r != protocol.ReasonDraining {
				t.Errorf("client %d: goodbyes %v: %q is neither moved nor draining", i, reasons, r)
			}
		}
		if len(reasons) > 2 {
			t.Logf("client %d: goodbyes %v (a reconnect reached an edge before its ring had converged)", i, reasons)
		}
	}
}
