package ring

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MembershipConfig configures a Membership. Zero values mean the defaults given on each field.
type MembershipConfig struct {
	// Region is the watcher's own region; "" is DefaultRegion. Its ring (View.Ring) holds the
	// serving edges of this region only, so that each region places teams on its own edges;
	// the edges of other regions are members too, known by region (View.Serving, View.RingOf)
	// for a proxy to fall back to when its own region has none, and for an edge to know when
	// the region of the visitors it serves has edges again.
	Region string
	// Static edges are always members (state serving) and never expire: for setups without
	// discovery. Announcements about them still update their load. They are in the watcher's
	// region unless they name another.
	Static []Announcement
	// Missed is how many announcement intervals an edge may miss before it leaves; default 5.
	// Generous on purpose: an edge that died is taken out at once by the first proxy that
	// fails to connect to it (MarkDown); expiry only cleans up. An edge briefly starved of CPU
	// in a storm must not leave the ring, or its teams move and the storm spreads (measured:
	// at 3 × 250 ms, surviving edges flapped out of the ring hundreds of times in a storm).
	Missed int
	// MinTTL is the least time an edge stays after its last announcement; default 2s.
	MinTTL time.Duration
	// DownFor is how long MarkDown keeps an edge out of the ring; default 5s. An edge that died
	// stops announcing and leaves for good within the TTL.
	DownFor time.Duration
	// OnChange is called after every change of the ring, with the old and new views, under the
	// Membership's lock: it must not block or call back into the Membership.
	OnChange func(old, new *View)
	Logger   *slog.Logger
	// Probe, when set, asks a silent edge directly whether it is still there: an edge whose
	// announcements are overdue is probed (by Run, off the request path) once per announcement
	// interval, and stays in the ring while it answers, however long it is not heard: the
	// announcements travel through NATS, and a NATS outage silences every edge at once
	// although they all still serve (see silent.go). It returns what the edge would announce
	// now, which is taken as an announcement would be. Nil: an edge not heard for its TTL
	// leaves. The ring package knows no HTTP: the proxy gives an HTTP prober
	// (internal/ring/probe).
	Probe func(ctx context.Context, last Announcement) (Announcement, error)
	// ProbeTimeout bounds one probe, default 1s; ProbeConcurrency the probes under way at once,
	// default 16.
	ProbeTimeout     time.Duration
	ProbeConcurrency int
	// Now is the clock; tests set it.
	Now func() time.Time
}

// View is one immutable state of the membership.
type View struct {
	// Region is the watcher's own region, and Ring holds its serving edges not marked down.
	Region string
	Ring   *Ring
	// Edges are the live edges (serving or draining) by node, of every region. Their
	// Region is never empty: an announcement without one is in DefaultRegion.
	Edges map[string]Announcement
	// Serving lists by region the serving edges not marked down, sorted: the node sets of
	// every region's ring, the own region's included. A region with none is absent.
	Serving map[string][]string
	// Down lists the serving edges (of any region) kept out of their ring by MarkDown, sorted.
	Down []string
	// Version rises with every change of a region's ring: the own one (Ring) or another's.
	Version uint64
	// Probed lists, sorted, the edges silent past their TTL that are still members because
	// they answer probes (or have not yet failed one): the ring is kept by probes, not by
	// announcements. Empty while every edge is heard.
	Probed []string

	rings *ringCache // RingOf's
}

// Addr is the address of node, or "".
func (v *View) Addr(node string) string { return v.Edges[node].Addr }

// RingOf is the ring of region's serving edges: Ring for the watcher's own region. Another
// region's is built on first use and kept while that region's serving set stays the same: a
// ring of 50 edges takes tens of milliseconds to build, and a watcher hears every region's
// edges but routes by its own region's ring nearly always.
func (v *View) RingOf(region string) *Ring {
	region = RegionOr(region)
	if region == v.Region {
		return v.Ring
	}
	return v.rings.get(region, v.Serving[region])
}

// ringCache keeps the last ring built for each region other than the watcher's own.
type ringCache struct {
	mu sync.Mutex
	by map[string]*Ring
}

func (c *ringCache) get(region string, nodes []string) *Ring {
	if len(nodes) == 0 {
		return New(nil) // not kept: any name may be asked, and an empty ring costs nothing
	}
	key := strings.Join(nodes, ",")
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.by[region]; r != nil && r.Key() == key {
		return r
	}
	r := New(nodes)
	c.by[region] = r
	return r
}

// Membership keeps the live edge set from the edges' announcements, and the ring of its serving
// edges. The ring is rebuilt when the set changes, by whoever changed it (an announcement, the
// expiry ticker, MarkDown), and swapped in atomically: readers on the request path only load a
// pointer.
type Membership struct {
	cfg   MembershipConfig
	log   *slog.Logger
	rings *ringCache // other regions' rings, shared by every view

	mu    sync.Mutex
	edges map[string]*edgeState
	down  map[string]time.Time // node → excluded until
	ver   uint64

	view atomic.Pointer[View]

	exclMu sync.Mutex
	excl   map[string]*Ring // rings without some nodes, by key, for the current version
	exclV  uint64

	slots chan struct{} // one per probe under way
}

type edgeState struct {
	a      Announcement
	seen   time.Time // its last announcement
	static bool
	// Probing (silent.go), all under Membership.mu.
	answered time.Time // the last probe answer
	asked    time.Time // when the last probe started
	failed   time.Time // when the last failed probe started
	probing  bool      // a probe is under way
	failing  bool      // its last probe failed (logged once per run of failures)
	kept     bool      // silent past its TTL, kept by probes (logged on change)
}

// NewMembership returns a membership holding cfg.Static.
func NewMembership(cfg MembershipConfig) *Membership {
	cfg.Region = RegionOr(cfg.Region)
	if cfg.Missed <= 0 {
		cfg.Missed = 5
	}
	if cfg.MinTTL <= 0 {
		cfg.MinTTL = 2 * time.Second
	}
	if cfg.DownFor <= 0 {
		cfg.DownFor = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = time.Second
	}
	if cfg.ProbeConcurrency <= 0 {
		cfg.ProbeConcurrency = 16
	}
	m := &Membership{cfg: cfg, log: cfg.Logger, edges: make(map[string]*edgeState), down: make(map[string]time.Time),
		slots: make(chan struct{}, cfg.ProbeConcurrency), rings: &ringCache{by: map[string]*Ring{}}}
	for _, a := range cfg.Static {
		a.State = EdgeServing
		a.Admitting = true
		if a.Region == "" {
			a.Region = cfg.Region
		}
		m.edges[a.Node] = &edgeState{a: a, static: true}
	}
	m.view.Store(&View{Region: cfg.Region, Ring: New(nil), Edges: map[string]Announcement{}, Serving: map[string][]string{},
		rings: m.rings})
	m.mu.Lock()
	m.rebuild()
	m.mu.Unlock()
	return m
}

// View is the current state. It never returns nil.
func (m *Membership) View() *View { return m.view.Load() }

// Owner is the edge that owns team in the current ring, or "" when no edge serves.
func (m *Membership) Owner(team string) string { return m.view.Load().Ring.Owner(team) }

// Observe takes one announcement.
func (m *Membership) Observe(a Announcement) {
	if a.Validate() != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.edges[a.Node]
	if e != nil && !e.static && !e.a.Started.Equal(a.Started) && e.a.Addr != a.Addr && m.alive(e) {
		// Two live edges under one name (two `weft edge` without --node): taking both would
		// flip the address and flap the ring on every announcement. The first keeps the
		// name until it falls silent; the conflict is logged every time.
		m.log.Error("two edges announce the same node name; ignoring the newer until the first falls silent",
			"edge", a.Node, "kept", e.a.Addr, "ignored", a.Addr)
		return
	}
	if e == nil {
		e = &edgeState{}
		m.edges[a.Node] = e
		m.log.Info("edge joined", "edge", a.Node, "addr", a.Addr, "state", a.State)
	}
	m.take(e, a)
	e.seen = m.cfg.Now()
	m.rebuild()
}

// take records a as what e says of itself, from an announcement or a probe's answer. m.mu held.
func (m *Membership) take(e *edgeState, a Announcement) {
	if e.a.Node != "" && e.a.State != a.State {
		m.log.Info("edge changed state", "edge", a.Node, "state", a.State)
	}
	a.Region = RegionOr(a.Region)
	if e.static {
		a.State = EdgeServing // a static member is always routable
		a.Region = e.a.Region // in the region it was configured in
	}
	if !e.a.Started.Equal(a.Started) && !m.down[a.Node].IsZero() {
		delete(m.down, a.Node) // a new life of the edge: it is up again
	}
	e.a = a
}

// MarkDown keeps node out of the ring for DownFor (or until it announces from a new life):
// the proxy calls it when node refused a connection, so that the request, and every one after
// it, goes to the next owner at once instead of after the TTL. It returns the new view.
func (m *Membership) MarkDown(node string) *View {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.edges[node]; ok {
		if m.down[node].IsZero() {
			m.log.Warn("edge marked down", "edge", node)
		}
		m.down[node] = m.cfg.Now().Add(m.cfg.DownFor)
		m.rebuild()
	}
	return m.view.Load()
}

// alive reports whether e announced, or answered a probe, within its TTL. m.mu held.
func (m *Membership) alive(e *edgeState) bool {
	return m.cfg.Now().Sub(lastSign(e)) <= m.ttl(e)
}

func (m *Membership) ttl(e *edgeState) time.Duration {
	return max(time.Duration(m.cfg.Missed)*time.Duration(e.a.IntervalMS)*time.Millisecond, m.cfg.MinTTL)
}

// Expire drops edges silent for more than their TTL and lifts expired down marks. With a
// Probe, silent means neither announcing nor answering probes, and an edge leaves only once a
// probe started after its last sign of life has failed: a proxy that was itself stalled past
// the TTL (a pause, a suspended VM) asks before it drops.
func (m *Membership) Expire() {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for node, e := range m.edges {
		if e.static || now.Sub(lastSign(e)) <= m.ttl(e) {
			continue
		}
		if m.cfg.Probe == nil {
			m.log.Warn("edge left: stopped announcing", "edge", node, "silent", now.Sub(e.seen).Round(time.Millisecond))
		} else if !e.failed.IsZero() && !e.failed.Before(lastSign(e)) {
			m.log.Warn("edge left: stopped announcing and answering probes", "edge", node,
				"silent", now.Sub(e.seen).Round(time.Millisecond), "unanswered", now.Sub(lastSign(e)).Round(time.Millisecond))
		} else {
			continue // not asked yet since its last sign of life: the next probe decides
		}
		delete(m.edges, node)
		delete(m.down, node)
	}
	for node, until := range m.down {
		if now.After(until) {
			delete(m.down, node)
		}
	}
	m.rebuild()
}

// Run expires silent edges and starts the probes due (with a Probe) every interval until ctx
// ends; it returns once the probes it started have ended (ctx cancels them).
func (m *Membership) Run(ctx context.Context, interval time.Duration) {
	var probes sync.WaitGroup
	defer probes.Wait()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Expire()
			m.startProbes(ctx, &probes)
		}
	}
}

// rebuild publishes a new view; the ring is rebuilt only when its node set changed. m.mu held.
func (m *Membership) rebuild() {
	old := m.view.Load()
	now := m.cfg.Now()
	edges := make(map[string]Announcement, len(m.edges))
	serving := map[string][]string{}
	var down, probed []string
	for node, e := range m.edges {
		edges[node] = e.a
		if m.noteKept(node, e, now) {
			probed = append(probed, node)
		}
		if e.a.State == EdgeServing {
			if m.down[node].IsZero() {
				serving[e.a.Region] = append(serving[e.a.Region], node)
			} else {
				down = append(down, node)
			}
		}
	}
	for _, nodes := range serving {
		slices.Sort(nodes)
	}
	slices.Sort(down)
	slices.Sort(probed)
	v := &View{Region: m.cfg.Region, Ring: old.Ring, Edges: edges, Serving: serving, Down: down, Version: m.ver,
		Probed: probed, rings: m.rings}
	m.logProbed(old, v)
	// Building a ring takes milliseconds (tens with 50 edges); most announcements change
	// nothing but load figures, so the ring is rebuilt only when its node set changed.
	own := strings.Join(serving[m.cfg.Region], ",")
	if own != old.Ring.Key() {
		v.Ring = New(serving[m.cfg.Region])
	}
	changed := m.logRegions(old, v)
	if changed {
		m.ver++
		v.Version = m.ver
	}
	m.view.Store(v)
	if changed && m.cfg.OnChange != nil {
		m.cfg.OnChange(old, v)
	}
}

// logRegions logs how the regions' serving sets changed from old to v, and reports whether
// any did. The own region's ring changes at Info; another region's at Debug, unless it
// loses its last serving edge or gains its first (what a proxy falls back on, and what an
// edge's visitors wait for). m.mu held.
func (m *Membership) logRegions(old, v *View) bool {
	changed := false
	for region, nodes := range v.Serving {
		changed = m.logRegion(region, old.Serving[region], nodes) || changed
	}
	for region, nodes := range old.Serving {
		if _, ok := v.Serving[region]; !ok {
			changed = m.logRegion(region, nodes, nil) || changed
		}
	}
	return changed
}

func (m *Membership) logRegion(region string, was, is []string) bool {
	if slices.Equal(was, is) {
		return false
	}
	switch {
	case region == m.cfg.Region:
		m.log.Info("ring changed", "edges", strings.Join(is, ","), "version", m.ver+1)
	case len(was) == 0 || len(is) == 0:
		m.log.Info("region's ring changed", "region", region, "edges", strings.Join(is, ","), "version", m.ver+1)
	default:
		m.log.Debug("region's ring changed", "region", region, "edges", strings.Join(is, ","), "version", m.ver+1)
	}
	return true
}

// OwnerExcluding is the owner of team in the current ring without the nodes in excluded: the
// ring a proxy routes by after it marked those down. Names not in the ring are ignored. Rings
// are cached per version; past 16 exclusion sets in one version (no proxy makes that many; a
// client writing the header itself might) it answers "" (no opinion) rather than build more.
func (m *Membership) OwnerExcluding(team string, excluded []string) string {
	v := m.view.Load()
	var ex []string
	for _, n := range excluded {
		if v.Ring.Has(n) && !slices.Contains(ex, n) {
			ex = append(ex, n)
		}
	}
	if len(ex) == 0 {
		return v.Ring.Owner(team)
	}
	slices.Sort(ex)
	key := strings.Join(ex, ",")
	m.exclMu.Lock()
	defer m.exclMu.Unlock()
	if m.exclV != v.Version || m.excl == nil {
		m.excl, m.exclV = make(map[string]*Ring), v.Version
	}
	r, ok := m.excl[key]
	if !ok {
		if len(m.excl) >= 16 {
			return ""
		}
		r = v.Ring.Without(ex...)
		m.excl[key] = r
	}
	return r.Owner(team)
}
