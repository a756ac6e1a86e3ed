package regiontest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/wan"
	"github.com/weft-edge/weft/proxy"
	"github.com/weft-edge/weft/pubsub"
)

// Regions behind proxies: each region's edges are a ring (they announce on their region's
// leaf node, and core NATS carries the announcements over the leaf links to the hub and the
// other regions), and each region has a proxy that watches the announcements on its own leaf
// node, routes by its region's ring and falls back to the other region. Clients connect
// through their region's proxy.
//
// The proxy of a region that falls back reaches the other region's edges over loopback: only
// NATS crosses the simulated WAN (proxy.Config has no dialer to put a link under).

// announceEvery is how often the edges announce: the proxies and edges notice a dead edge
// (and drop it) within a few of these.
const announceEvery = 100 * time.Millisecond

// newProxiedSystem is newRegions with clustered edges in each region and a proxy per region
// falling back to the others, in the order of specs; it returns once every proxy knows every
// edge of every region, which is the announcements crossing the leaf links.
func newProxiedSystem(t *testing.T, specs ...regionSpec) *system {
	t.Helper()
	s := newRegions(t, specs...)
	for i, sp := range specs {
		r := s.regions[i]
		for j := range sp.edges {
			s.startClustered(r, fmt.Sprintf("edge-%s%d", r.name, j+1))
		}
	}
	for _, r := range s.regions {
		var fallback []string
		for _, o := range s.regions {
			if o != r {
				fallback = append(fallback, o.name)
			}
		}
		bus := s.bus(pubsub.Config{Name: "weft-proxy-" + r.name, URL: r.leaf.URL(0)})
		r.proxy = wstack.StartProxy(t, proxy.Config{Tokens: s.keys, Watch: bus, Region: r.name, Fallback: fallback,
			Settle: 5 * announceEvery})
	}
	s.waitServing(nil)
	return s
}

// startClustered starts edge name in region r: a clustered edge of the region, announcing
// itself on its own bus to the region's leaf node. A name already used is a new life (its
// previous one must be gone from every view: see waitServing).
func (s *system) startClustered(r *region, name string) {
	s.t.Helper()
	bus := s.bus(pubsub.Config{Name: "weft-" + name, URL: r.leaf.URL(0), FallbackDomain: "hub"})
	e := wstack.StartEdge(s.t, func(addr string) edge.Config {
		c := wstack.EdgeConfig(s.origin, bus, s.keys, name)
		c.Index = index.Config{NoFuzzy: true}
		c.Region = r.name
		c.Cluster = &edge.ClusterConfig{Peers: bus, Addr: addr, Interval: announceEvery, MoveSpread: time.Second}
		return c
	})
	r.edges = append(r.edges, e)
	r.buses = append(r.buses, bus)
	r.names = append(r.names, name)
}

// kill makes every edge of r vanish as killed processes would: connections cut, address
// refusing, announcements stopped; then they are shut down (announcing no drain).
func (s *system) kill(r *region) {
	for i, e := range r.edges {
		e.Crash()
		e.Close()
		r.buses[i].Close()
		testkit.OK(s.t, e.Stop())
	}
	r.edges, r.buses = nil, nil
}

// views are the membership views of every proxy and live edge.
func (s *system) views() map[string]*ring.View {
	out := map[string]*ring.View{}
	for _, r := range s.regions {
		out["proxy-"+r.name] = r.proxy.Server.Membership().View()
		for i, e := range r.edges {
			if n := e.Server(); n != nil {
				out[r.names[i]] = n.Membership().View()
			}
		}
	}
	return out
}

// waitServing waits until every proxy and live edge sees each region serving with the
// edges it runs now (a region in dead serving nothing: every view has let its edges go).
func (s *system) waitServing(dead *region) {
	s.t.Helper()
	want := map[string]string{}
	for _, r := range s.regions {
		if r != dead {
			want[r.name] = fmt.Sprint(sortedNames(r.names))
		}
	}
	testkit.EventuallyOr(s.t, 30*time.Second, func() bool {
		for _, v := range s.views() {
			for _, r := range s.regions {
				if got := v.Serving[r.name]; (r == dead && len(got) > 0) || (r != dead && fmt.Sprint(got) != want[r.name]) {
					return false
				}
				if r == dead {
					for _, a := range v.Edges {
						if a.Region == r.name {
							return false
						}
					}
				}
			}
		}
		return true
	}, "every view to see the regions serving "+fmt.Sprint(want), func() {
		for who, v := range s.views() {
			s.t.Logf("%s sees serving %v, down %v, probed %v", who, v.Serving, v.Down, v.Probed)
		}
	})
}

func sortedNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}

// dialProxy connects a client of region r for (team, user) through r's proxy.
func (s *system) dialProxy(r *region, team, user string) *session {
	s.t.Helper()
	return s.dialURL(r, "ws"+r.proxy.URL[len("http"):]+"/ws", team, user)
}

// servedIn reports whether every session is connected, resumed when resumed is set, to an
// edge of region.
func servedIn(sessions []*session, region string, resumed bool) bool {
	for _, ss := range sessions {
		if h := ss.c.Hello(); h.Region != region || (resumed && !h.Resumed) {
			return false
		}
	}
	return true
}

// tally counts, over sessions, the events of seqs (from, to] of their team never handed over
// and those the server sent twice (the client drops them; it counts them).
func tally(sessions []*session, to map[string]int64) (lost, dup int64) {
	for _, ss := range sessions {
		ss.mu.Lock()
		seen := map[int64]int{}
		for _, seq := range ss.seqs {
			seen[seq]++
		}
		ss.mu.Unlock()
		for seq := ss.from + 1; seq <= to[ss.team]; seq++ {
			if seen[seq] == 0 {
				lost++
			}
		}
		for _, n := range seen {
			dup += int64(n - 1)
		}
		dup += ss.c.Stats().Duplicates
	}
	return lost, dup
}

// TestRegionKilledFailsOverAndComesHome: every edge of region b is killed. b's proxy routes
// b's clients to region a, its fallback; they resume there with no event lost or repeated
// while the origin keeps changing their teams. Then b's edges start again (the same names, new
// lives): region a's edges send the visitors home (goodbye moved, spread, after pre-warming
// their teams on their b owners, a warm request that crosses both WAN links), and they resume
// in b, again losing nothing. Region a's own clients are never disturbed.
func TestRegionKilledFailsOverAndComesHome(t *testing.T) {
	s := newProxiedSystem(t, regionSpec{"a", rttA, 2}, regionSpec{"b", rttB, 2})
	a, b := s.regions[0], s.regions[1]
	teams := s.origin.TeamIDs()[:3]
	var inA, inB []*session
	for _, team := range teams {
		users := s.users(team, 3)
		inA = append(inA, s.dialProxy(a, team, users[0]))
		inB = append(inB, s.dialProxy(b, team, users[1]), s.dialProxy(b, team, users[2]))
	}
	all := append(slices.Clone(inA), inB...)
	testkit.True(t, servedIn(inA, "a", false) && servedIn(inB, "b", false), "clients served in their own regions")
	for _, team := range teams {
		s.waitLive(team)
	}
	s.waitCaughtUp(all, 30*time.Second)

	tr := s.drive(teams, 100*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			tr.stop(t)
		}
	}()
	now := func() map[string]int64 {
		m := map[string]int64{}
		for _, team := range teams {
			m[team] = s.origin.Seq(team)
		}
		return m
	}
	s.waitSeqs(all, now(), 30*time.Second)

	killed := time.Now()
	s.kill(b)
	testkit.EventuallyOr(t, 30*time.Second, func() bool { return servedIn(inB, "a", true) },
		"region b's clients resumed in region a", func() {
			for _, ss := range inB {
				t.Logf("%s: hello %+v", ss, ss.c.Hello())
			}
		})
	failedOver := time.Since(killed)
	// Served again: they have what was published up to now, each once and in order.
	away := now()
	s.waitSeqs(inB, away, 30*time.Second)
	caughtUp := time.Since(killed)
	awayLost, awayDup := tally(inB, away)
	t.Logf("region b killed: its %d clients all resumed in region a %v after, and had every event published meanwhile %v after; events lost %d, duplicated %d",
		len(inB), failedOver.Round(time.Millisecond), caughtUp.Round(time.Millisecond), awayLost, awayDup)
	if status := b.proxy.Server.Membership().View().Serving["b"]; len(status) != 0 {
		t.Errorf("b's proxy still sees b serving: %v", status)
	}

	// Region b returns once every view has let its dead edges go (a name is taken by a new
	// life only then).
	s.waitServing(b)
	names := b.names
	b.names = nil
	back := time.Now()
	for _, n := range names {
		s.startClustered(b, n)
	}
	s.waitServing(nil)
	testkit.EventuallyOr(t, 30*time.Second, func() bool { return servedIn(inB, "b", true) },
		"region b's clients back home", func() {
			for _, ss := range inB {
				t.Logf("%s: hello %+v", ss, ss.c.Hello())
			}
		})
	wentHome := time.Since(back)
	s.waitSeqs(all, now(), 30*time.Second)

	tr.stop(t)
	stopped = true
	testkit.Equal(t, tr.failed.Load(), int64(0), "changes the origin failed to publish")
	s.waitCaughtUp(all, 30*time.Second)
	final := now()
	for _, ss := range all {
		ss.checkSeqs(t, final[ss.team])
	}
	for _, ss := range inA {
		testkit.Equal(t, ss.reconnects.Load(), int64(0), ss.String()+": reconnects of a client of region a")
	}
	for _, ss := range inB {
		ss.mu.Lock()
		byes := slices.Clone(ss.goodbyes)
		ss.mu.Unlock()
		// The kill cut its connection without a goodbye; going home it was told moved.
		if !slices.Equal(byes, []string{"moved"}) {
			t.Errorf("%s: goodbyes %v, want one moved (home)", ss, byes)
		}
	}
	lost, dup := tally(inB, final)
	t.Logf("region b back: its %d clients all home %v after its edges started; over the whole test (%d events per team) events lost %d, duplicated %d",
		len(inB), wentHome.Round(time.Millisecond), final[teams[0]]-inB[0].from, lost, dup)
}

// TestRegionPartitionThroughProxies: region b's link is cut for 20 s (as in
// TestRegionPartition) with its clients behind its proxy. b's proxy keeps routing to b's
// edges throughout: their announcements still reach it over b's leaf node (the other
// region's do not: it keeps those edges by probing them); b's sessions keep being served
// (calls succeed) and none reconnects; a client connecting through b's proxy during the
// partition is served in b. After the heal every session has every event once and in order.
func TestRegionPartitionThroughProxies(t *testing.T) {
	s := newProxiedSystem(t, regionSpec{"a", rttA, 1}, regionSpec{"b", rttB, 2})
	a, b := s.regions[0], s.regions[1]
	team := s.origin.TeamIDs()[0]
	users := s.users(team, 4)
	inA := []*session{s.dialProxy(a, team, users[0])}
	inB := []*session{s.dialProxy(b, team, users[1]), s.dialProxy(b, team, users[2])}
	all := append(slices.Clone(inA), inB...)
	testkit.True(t, servedIn(inA, "a", false) && servedIn(inB, "b", false), "clients served in their own regions")
	s.waitLive(team)
	s.waitCaughtUp(all, 30*time.Second)

	tr := s.drive([]string{team}, 50*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			tr.stop(t)
		}
	}()
	s.waitSeqs(all, map[string]int64{team: s.origin.Seq(team) + 5}, 30*time.Second)

	b.link.Cut(wan.Drop)
	cutAt := s.origin.Seq(team)
	wantB := fmt.Sprint(sortedNames(b.names))
	var calls, ok int
	var late *session // a client arriving during the partition
	var offRing []string
	start := time.Now()
	tick := time.NewTicker(250 * time.Millisecond) // a steady trickle of calls, not a load test
	for i := 0; time.Since(start) < partition; i++ {
		<-tick.C
		if v := b.proxy.Server.Membership().View(); fmt.Sprint(v.Serving["b"]) != wantB && len(offRing) < 5 {
			offRing = append(offRing, fmt.Sprintf("after %v: serving %v, down %v", time.Since(start).Round(time.Millisecond), v.Serving, v.Down))
		}
		if late == nil && time.Since(start) > partition/2 {
			late = s.dialProxy(b, team, users[3])
			testkit.Equal(t, late.c.Hello().Region, "b", "region of the edge serving a client of b arriving during the partition")
		}
		ss := inB[i%len(inB)]
		calls++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := ss.c.UsersInfo(ctx, ss.user); err == nil {
			ok++
		} else if calls-ok <= 3 {
			t.Logf("%s after %v: call failed: %v", ss, time.Since(start).Round(time.Millisecond), err)
		}
		cancel()
	}
	tick.Stop()
	endAt := s.origin.Seq(team)
	testkit.Equal(t, ok, calls, "calls on region b's sessions that succeeded during the partition")
	if len(offRing) > 0 {
		t.Errorf("b's proxy did not see region b serving with %s during the partition: %v", wantB, offRing)
	}
	v := b.proxy.Server.Membership().View()
	t.Logf("partition: %d events published (seqs %d..%d); b's proxy at its end: serving %v, kept by probes %v",
		endAt-cutAt, cutAt+1, endAt, v.Serving, v.Probed)
	s.waitSeqs(inA, map[string]int64{team: endAt}, 10*time.Second)

	b.link.Heal()
	healed := time.Now()
	b.waitLeafConnected(t)
	inB = append(inB, late)
	all = append(all, late)
	s.waitSeqs(all, map[string]int64{team: s.origin.Seq(team)}, time.Minute)
	t.Logf("region b caught up %v after the heal", time.Since(healed).Round(time.Millisecond))

	tr.stop(t)
	stopped = true
	testkit.Equal(t, tr.failed.Load(), int64(0), "changes the origin failed to publish")
	s.waitCaughtUp(all, 30*time.Second)
	final := s.origin.Seq(team)
	for _, ss := range all {
		ss.check(t, final)
	}
	lost, dup := tally(all, map[string]int64{team: final})
	t.Logf("over the test (%d events): events lost %d, duplicated %d", final-inB[0].from, lost, dup)
}
