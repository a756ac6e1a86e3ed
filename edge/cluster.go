package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/ring/probe"
	"github.com/weft-edge/weft/internal/routesig"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
)

// Peers is what an edge in a cluster needs from NATS; *pubsub.Bus implements it.
type Peers interface {
	Announce(a ring.Announcement) error
	WatchEdges(fn func(ring.Announcement)) (stop func(), err error)
	Warm(ctx context.Context, node string, teams []string) error
	ServeWarm(node string, timeout time.Duration, fn func(ctx context.Context, teams []string) error) (stop func(), err error)
}

// ClusterConfig joins an edge to a ring of edges. Zero values mean the defaults on each field.
type ClusterConfig struct {
	Peers Peers // required
	// Addr is the host:port proxies reach this edge's client endpoints on; required.
	Addr string
	// Interval is how often the edge announces itself; default 1s. Watchers drop an edge that
	// missed five (ring.MembershipConfig.Missed), and keep one at least 2s (MinTTL).
	Interval time.Duration
	// MoveSpread is the window over which the sessions of teams that moved to another edge are
	// told goodbye moved, each at a random time in it; default 10s.
	MoveSpread time.Duration
	// WarmTimeout bounds pre-warming the teams a move hands to another edge; default 30s. Past
	// it the sessions move anyway and the new owner loads on demand.
	WarmTimeout time.Duration
	// VisitorRecheck is how long a visitor (a session routed here by a proxy of another
	// region, visitors.go) stays while its home region has serving edges this edge saw no
	// change in, before it is sent home anyway: its region's proxies may have routed around
	// edges that never stopped serving. Default 1m.
	VisitorRecheck time.Duration
	// PeerTLS, when set, is how this edge reaches its peers' client endpoints (their /probe
	// during a NATS outage): over TLS, for peers that serve it. Nil: plain HTTP.
	PeerTLS *tls.Config
}

// cluster is an edge's part in the ring: its view of the membership, its announcements, and
// the moves of sessions when the ring changes.
type cluster struct {
	cfg     ClusterConfig
	members *ring.Membership
	changed chan struct{} // cap 1: the ring changed
	lagMu   sync.Mutex    // announce runs on the ticker and on a drain
	lag     *lagWindow    // under lagMu
	lagP99  atomic.Int64  // ns, of the last announcement
	started time.Time
	prober  *probe.Client // asks silent peers directly (a NATS outage silences them all)

	announceFailing atomic.Bool

	vis visitors

	mu     sync.Mutex
	moving map[string]string // team → the edge its sessions are moving to

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stops  []func()

	routes      *routesig.Signer // nil: no key, every routing header ignored
	ringChanges prometheus.Counter
	ignored     *prometheus.CounterVec
	moved       *prometheus.CounterVec
	warms       *prometheus.CounterVec
}

func newCluster(s *Server, cfg ClusterConfig) (*cluster, error) {
	if cfg.Peers == nil || cfg.Addr == "" {
		return nil, errors.New("edge: ClusterConfig needs Peers and Addr")
	}
	setDefault(&cfg.Interval, time.Second)
	setDefault(&cfg.MoveSpread, 10*time.Second)
	setDefault(&cfg.WarmTimeout, 30*time.Second)
	setDefault(&cfg.VisitorRecheck, time.Minute)
	c := &cluster{cfg: cfg, changed: make(chan struct{}, 1), started: time.Now(), moving: make(map[string]string), lag: newLagWindow(),
		ringChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_edge_ring_changes_total",
			Help: "Changes of the ring of serving edges this edge has seen."}),
		moved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_sessions_moved_total",
			Help: "Sessions told goodbye moved, by why: ring (their team moved), drain, misrouted (a new connection for a team another edge owns) or home (a visitor from another region whose region serves again)."},
			[]string{"why"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_routing_headers_ignored_total",
			Help: "Requests whose routing headers (Weft-Excluded, Weft-Region) were ignored, by why: unsigned, malformed, stale or bad (signature); and probes (GET /probe) refused as unsigned, why=probe. Only proxies and peer edges may send them; a count here is a client talking to the edge directly, or proxies and edges that do not share the token secret or a clock."},
			[]string{"why"}),
		warms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_warm_teams_total",
			Help: "Teams pre-warmed, by direction (asked of another edge, or done for one) and outcome."},
			[]string{"direction", "outcome"}),
	}
	for _, why := range []string{"ring", "drain", "misrouted", "home"} {
		c.moved.WithLabelValues(why) // at 0 from the start: see newMetrics
	}
	for _, dir := range []string{"asked", "done"} {
		c.warms.WithLabelValues(dir, "ok")
		c.warms.WithLabelValues(dir, "failed")
	}
	// An edge's view of the ring must survive a NATS outage as the proxies' does (they route
	// by theirs; a view that lost every peer would hand their teams back and forth when NATS
	// returns and move sessions for nothing): it hears itself without NATS (announce) and
	// probes peers it cannot hear, as a proxy does.
	c.prober = probe.New(c.cfg.PeerTLS)
	c.vis.init()
	c.members = ring.NewMembership(ring.MembershipConfig{Region: s.cfg.Region, Logger: s.log, Probe: c.prober.Probe, OnChange: func(old, v *ring.View) {
		// Here, not later: a region that empties and fills again between two looks counts.
		c.vis.noteRegions(v)
		if v.Ring != old.Ring { // not another region's change
			c.ringChanges.Inc()
		}
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}})
	keys := s.cfg.RoutingKeys
	if rk, ok := s.cfg.Tokens.(interface{ RoutingKeys() [][]byte }); ok && keys == nil {
		keys = rk.RoutingKeys()
	}
	if len(keys) > 0 {
		var err error
		if c.routes, err = routesig.New(keys[0], keys[1:]...); err != nil {
			return nil, fmt.Errorf("edge: Config.RoutingKeys: %w", err)
		}
	}
	if c.routes != nil {
		c.prober.Sign = func() string { return c.routes.Sign(time.Now(), routesig.Route{Path: probe.Path}) }
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s.cfg.Registry.MustRegister(c.ringChanges, c.ignored, c.moved, c.warms, c.vis.sessions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_sched_lag_p99_seconds",
			Help: "The 99th percentile of how long runnable goroutines waited for a CPU over the last announcement interval, as announced to proxies."},
			func() float64 { return time.Duration(c.lagP99.Load()).Seconds() }))
	return c, nil
}

// Membership is the edge's view of the ring (nil without a cluster).
func (s *Server) Membership() *ring.Membership {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.members
}

func (c *cluster) goOwned(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

func (c *cluster) start(s *Server) error {
	stop, err := c.cfg.Peers.WatchEdges(c.members.Observe)
	if err != nil {
		return err
	}
	c.stops = append(c.stops, stop)
	stop, err = c.cfg.Peers.ServeWarm(s.cfg.Node, c.cfg.WarmTimeout, s.warm)
	if err != nil {
		c.stops[0]()
		return err
	}
	c.stops = append(c.stops, stop)
	c.announce(s)
	c.goOwned(func() {
		t := time.NewTicker(c.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
				c.announce(s)
				c.sendHome(s) // also when a home region's edges restarted without changing its ring
			}
		}
	})
	c.goOwned(func() { c.members.Run(c.ctx, c.cfg.Interval) })
	c.goOwned(func() {
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-c.changed:
				if !s.draining.Load() {
					c.rebalance(s)
					c.sendHome(s)
				}
			}
		}
	})
	return nil
}

func (c *cluster) stop() {
	c.cancel()
	for _, stop := range c.stops {
		stop()
	}
	c.wg.Wait()
	c.prober.Close()
}

func (c *cluster) announce(s *Server) {
	c.lagMu.Lock()
	p99, _ := c.lag.quantile(0.99)
	c.lagMu.Unlock()
	c.lagP99.Store(int64(p99))
	a := c.announcement(s)
	c.members.Observe(a) // itself, whether or not NATS carries the announcement back
	// Logged when announcing starts and stops failing, not every interval of a NATS outage.
	err := c.cfg.Peers.Announce(a)
	switch {
	case err != nil && !c.announceFailing.Swap(true):
		s.log.Warn("announcing this edge failed; peers and proxies that cannot hear it probe it meanwhile", "err", err)
	case err == nil && c.announceFailing.Swap(false):
		s.log.Info("announcing this edge again")
	}
}

// announcement is what this edge says about itself now, with the lag of its last announcement:
// announced, and answered to a proxy's probe (server.go) when NATS does not carry it.
func (c *cluster) announcement(s *Server) ring.Announcement {
	state := ring.EdgeServing
	if s.draining.Load() {
		state = ring.EdgeDraining
	}
	return ring.Announcement{Node: s.cfg.Node, Addr: c.cfg.Addr, State: state, Region: s.cfg.Region, Sessions: s.Sessions(),
		Teams: s.teams.Len(), Admitting: state == ring.EdgeServing && !s.admit.over(levelHigh), IntervalMS: c.cfg.Interval.Milliseconds(),
		LagP99MS: float64(time.Duration(c.lagP99.Load())) / float64(time.Millisecond), Started: c.started,
		// No limit (a negative rate) is not a rate: the proxies' own then.
		AcceptRate: max(s.cfg.ConnectRate, 0), AcceptBurst: acceptBurst(s.cfg.ConnectRate, s.cfg.ConnectBurst)}
}

// acceptBurst is the burst an edge announces with its accept rate: none without a rate.
func acceptBurst(rate float64, burst int) int {
	if rate <= 0 {
		return 0
	}
	return max(burst, 0)
}

// routing is what the proxy that routed a request says of it: the edges it found down and
// routed around, and its region (the client's home).
type routing struct {
	excluded []string
	home     string
}

// routing reads r's routing headers when a proxy signed them for r (internal/routesig).
// Unsigned, or signed for another request or long ago, they say nothing, and are counted: a
// client that talks to the edge directly must not make it take a team its ring gives another
// edge (by naming the owner down), nor pass for a visitor from another region.
func (c *cluster) routing(r *http.Request) routing {
	excluded, region := r.Header.Get(protocol.HeaderExcluded), r.Header.Get(protocol.HeaderRegion)
	if excluded == "" && region == "" {
		return routing{}
	}
	err := routesig.ErrMissing
	if c.routes != nil {
		tok, _ := token.FromRequest(r)
		err = c.routes.Verify(r.Header.Get(protocol.HeaderRouted), time.Now(),
			routesig.Route{Path: r.URL.Path, Token: tok, Excluded: excluded, Region: region})
	}
	if err != nil {
		why := "bad"
		switch {
		case errors.Is(err, routesig.ErrMissing):
			why = "unsigned"
		case errors.Is(err, routesig.ErrMalformed):
			why = "malformed"
		case errors.Is(err, routesig.ErrStale):
			why = "stale"
		}
		c.ignored.WithLabelValues(why).Inc()
		return routing{}
	}
	rt := routing{home: region}
	if excluded != "" {
		rt.excluded = strings.Split(excluded, ",")
	}
	return rt
}

// probeSigned reports whether a probe of this edge came from a proxy or a peer: signed as
// routing headers are (internal/routesig), for the probe's path. A refused probe is counted
// as ignored routing headers are.
func (c *cluster) probeSigned(proof string) bool {
	err := c.routes.Verify(proof, time.Now(), routesig.Route{Path: probe.Path})
	if err != nil {
		c.ignored.WithLabelValues("probe").Inc()
	}
	return err == nil
}

// owns reports whether this edge should take a new connection for team: yes when the ring (as
// the proxy saw it, without the edges it excluded) gives team to it, or gives it to nobody.
func (c *cluster) owns(s *Server, team string, rt routing) (owner string, ok bool) {
	owner = c.members.OwnerExcluding(team, rt.excluded)
	return owner, owner == "" || owner == s.cfg.Node
}

// misrouted answers a connection for a team another edge owns: upgrade, goodbye moved, 4009.
// The client reconnects at once, and the proxy, by then on the same ring, sends it there.
func (c *cluster) misrouted(w http.ResponseWriter, r *http.Request, owner string) {
	conn, err := acceptWS(w, r)
	if err != nil {
		return
	}
	defer conn.close()
	var b wireBatch
	b.fill([]outFrame{{op: ws.OpText, p: goodbyeFrame(protocol.ReasonMoved, 0)}, closeFrame(protocol.CloseMoved, "team lives on "+owner)})
	if conn.writeBlocking(&b, time.Now().Add(5*time.Second)) == nil {
		// The client's close frame ends the wait, or closeWait does.
		_ = conn.nc.SetReadDeadline(time.Now().Add(closeWait))
		var buf bytes.Buffer
		for {
			if _, err := conn.readMessage(&buf, 1024, 1<<20); err != nil {
				break
			}
		}
	}
	c.moved.WithLabelValues("misrouted").Inc()
}

// rebalance moves the sessions of every team the ring now gives to another edge: it asks each
// new owner to pre-warm its teams, then tells the sessions goodbye moved over MoveSpread.
func (c *cluster) rebalance(s *Server) {
	byOwner := c.claimMoves(s, c.members.View().Ring)
	for owner, teams := range byOwner {
		c.goOwned(func() { c.handOver(c.ctx, s, owner, teams, c.cfg.MoveSpread, "ring") })
	}
}

// claimMoves groups the teams with sessions here that r gives to another edge by that edge,
// and marks them moving so that a second ring change does not move them twice.
func (c *cluster) claimMoves(s *Server, r *ring.Ring) map[string][]string {
	byOwner := map[string][]string{}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.hubs.Range(func(k, h any) bool {
		team := k.(string)
		if len(h.(*hub).snapshot()) == 0 {
			return true // no session to move (a hub outlives its sessions): nothing to pre-warm
		}
		owner := r.Owner(team)
		if owner != "" && owner != s.cfg.Node && c.moving[team] != owner {
			c.moving[team] = owner
			byOwner[owner] = append(byOwner[owner], team)
		}
		return true
	})
	return byOwner
}

// move is one session's goodbye in a hand-over, at offset at from the hand-over's start.
type move struct {
	at time.Duration
	ss *session
}

// planMoves gives each session a uniformly random time in [0, spread) and returns the moves in
// time order: a team's clients come back to its new owner spread over the window, not as a herd.
func planMoves(sessions []*session, spread time.Duration) []move {
	moves := make([]move, 0, len(sessions))
	for _, ss := range sessions {
		moves = append(moves, move{time.Duration(rand.Int64N(int64(max(spread, 1)))), ss})
	}
	slices.SortFunc(moves, func(a, b move) int { return int(a.at - b.at) })
	return moves
}

// handOver pre-warms teams on owner, then tells their sessions here goodbye moved, each at a
// random time in spread. A session whose team the ring gives back to this edge meanwhile stays.
// When ctx ends first, every session not yet told is told goodbye draining at once, with a
// jittered reconnect time: late, but never cut without a word.
func (c *cluster) handOver(ctx context.Context, s *Server, owner string, teams []string, spread time.Duration, why string) {
	defer func() {
		c.mu.Lock()
		for _, t := range teams {
			if c.moving[t] == owner {
				delete(c.moving, t)
			}
		}
		c.mu.Unlock()
	}()
	c.prewarm(ctx, s, owner, teams) // failed or not, the sessions move: the owner loads on demand
	if dl, ok := ctx.Deadline(); ok {
		// The pre-warm may have taken WarmTimeout (an owner that does not answer): the moves
		// still fit in half of what is left, so that the sessions have time to close and the
		// rest of a shutdown is not starved of its deadline.
		spread = max(min(spread, time.Until(dl)/2), 0)
	}
	var sessions []*session
	for _, team := range teams {
		if h, ok := s.hubs.Load(team); ok {
			sessions = append(sessions, h.(*hub).snapshot()...)
		}
	}
	s.log.Info("moving sessions", "to", owner, "teams", len(teams), "sessions", len(sessions), "over", spread, "why", why)
	var stay func(*session) bool
	if why == "ring" {
		stay = func(ss *session) bool { return c.members.Owner(ss.team.ID()) == s.cfg.Node } // the ring changed back
	}
	c.tellMoved(ctx, s, sessions, spread, why, stay)
}

// prewarm asks owner to load teams, within WarmTimeout. A failure is logged and counted; a
// ring's hand-over moves the sessions anyway (the owner loads on demand).
func (c *cluster) prewarm(ctx context.Context, s *Server, owner string, teams []string) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WarmTimeout)
	err := c.cfg.Peers.Warm(wctx, owner, teams)
	cancel()
	if err != nil {
		c.warms.WithLabelValues("asked", "failed").Add(float64(len(teams)))
		s.log.Warn("pre-warming moved teams failed", "to", owner, "teams", len(teams), "err", err)
	} else {
		c.warms.WithLabelValues("asked", "ok").Add(float64(len(teams)))
	}
	return err
}

// tellMoved tells each of sessions goodbye moved at a random time in spread, unless stay (when
// given, asked just before) keeps it here. When ctx ends first, every session not yet told is
// told goodbye draining at once, with a jittered reconnect time.
func (c *cluster) tellMoved(ctx context.Context, s *Server, sessions []*session, spread time.Duration, why string, stay func(*session) bool) {
	moves := planMoves(sessions, spread)
	begin := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i, m := range moves {
		if d := m.at - time.Since(begin); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				for _, rest := range moves[i:] {
					rest.ss.goodbye(endDraining, s.jitter(spread))
				}
				return
			case <-t.C:
			}
		}
		if stay != nil && stay(m.ss) {
			continue
		}
		m.ss.goodbye(endMoved, 0)
		c.moved.WithLabelValues(why).Inc()
	}
}

// drain hands every team with sessions to its owner in the ring without this edge, within ctx,
// spreading the moves over spread. It returns false when no other edge serves (the caller
// then says goodbye draining instead).
func (c *cluster) drain(ctx context.Context, s *Server, spread time.Duration) bool {
	c.announce(s) // draining: the others take this edge out of the ring now, not at the next tick
	r := c.members.View().Ring.Without(s.cfg.Node)
	if len(r.Nodes()) == 0 {
		return false
	}
	c.mu.Lock()
	clear(c.moving) // ring moves under way are superseded by the drain's
	c.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		// Every move must be told before the drain's deadline, with time left for the
		// sessions to close.
		spread = max(min(spread, time.Until(dl)/2), 0)
	}
	byOwner := c.claimMoves(s, r)
	var wg sync.WaitGroup
	for owner, teams := range byOwner {
		wg.Add(1)
		c.goOwned(func() {
			defer wg.Done()
			c.handOver(ctx, s, owner, teams, spread, "drain")
		})
	}
	wg.Wait() // handOver gives up at ctx's end, so this does too
	return true
}

// warm loads teams for another edge that is handing them over; it answers once all are loaded.
func (s *Server) warm(ctx context.Context, teams []string) error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var mu sync.Mutex
	var failed []string
	for _, team := range teams {
		g.Go(func() error {
			if _, err := s.teams.Get(gctx, team); err != nil {
				mu.Lock()
				failed = append(failed, team)
				mu.Unlock()
				return nil // the others still load
			}
			return nil
		})
	}
	g.Wait()
	if s.cluster != nil {
		s.cluster.warms.WithLabelValues("done", "ok").Add(float64(len(teams) - len(failed)))
		s.cluster.warms.WithLabelValues("done", "failed").Add(float64(len(failed)))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d teams failed to load (first %s)", len(failed), len(teams), failed[0])
	}
	return nil
}
