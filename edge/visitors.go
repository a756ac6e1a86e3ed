package edge

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/ring"
)

// Visitors: sessions from another region.
//
// A proxy whose region has no serving edge falls back to the next region of its list and
// routes by that region's ring, naming its own region in protocol.HeaderRegion. The edge takes
// such a connection as any other (ownership is judged on its own region's ring, the one the
// proxy routed by) and records the session as a visitor from that home region. When the home
// region serves again the visitors go home the way sessions move on a ring change: their teams
// are pre-warmed on their owners in the home region's ring, then the sessions are told goodbye
// moved at random times over MoveSpread. Their clients reconnect through their own region's
// proxy, which routes by its own ring again, and resume there: seqs are the team's, the same in
// every region.
//
// "Serves again" must be something this edge saw happen, not a ring that merely has edges:
// when a region's edges die its proxies mark them down at once, but the other regions' edges
// keep them in their views until their TTL (and drop them one by one), and a visitor arriving
// meanwhile must not be sent back to edges that are gone. So each region has a generation,
// bumped when an edge appears in its serving set: one that joins or comes back (looked at on
// every ring change, so that out and in again between two looks counts) or starts a new life
// (looked at on the announcement ticks too: a restart within the TTL keeps the set). Edges
// leaving bump nothing. A visitor goes home once its home region serves and its generation is
// no longer the one the visitor arrived in, or after VisitorRecheck in any case: the home
// region's proxies may have routed around edges that never stopped serving (if they still
// cannot reach them, the visitor comes straight back, once per VisitorRecheck). Its team is
// pre-warmed on its owner at home first; when that fails (the owner is gone again, or cannot
// load), the visitor stays and tries again after VisitorRecheck or at the next generation.
type visitors struct {
	mu       sync.Mutex
	by       map[*session]*visit
	from     map[string]int                 // region → visitors from it
	gen      map[string]uint64              // region → generation
	lives    map[string]map[string]struct{} // region → its serving edges' lives, node@started, at the last look
	sessions *prometheus.GaugeVec
}

type visit struct {
	home    string
	gen     uint64    // the home region's generation when the visitor arrived
	since   time.Time // arrival, or the last time it was sent home and stayed
	leaving bool      // a hand-over home is under way
}

func (vs *visitors) init() {
	vs.by, vs.from, vs.gen, vs.lives = map[*session]*visit{}, map[string]int{}, map[string]uint64{}, map[string]map[string]struct{}{}
	vs.sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_edge_visitor_sessions",
		Help: "Sessions routed here by the proxies of another region, which had no serving edge, by that region: they go home when it serves again."},
		[]string{"region"})
}

// count adds d to the visitors from region. A region's series goes with its last visitor: the
// name came in a header, and a client that reaches an edge directly may write anything there.
// vs.mu held.
func (vs *visitors) count(region string, d int) {
	vs.from[region] += d
	if n := vs.from[region]; n > 0 {
		vs.sessions.WithLabelValues(region).Set(float64(n))
	} else {
		delete(vs.from, region)
		vs.sessions.DeleteLabelValues(region)
	}
}

// noteRegions bumps the generation of every region whose serving set in v has a life (an edge,
// or an edge's new life) it did not have at the last look. It may run under the membership's
// lock (OnChange): it calls nothing back.
func (vs *visitors) noteRegions(v *ring.View) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.noteLocked(v)
}

func (vs *visitors) noteLocked(v *ring.View) {
	for region, nodes := range v.Serving {
		was := vs.lives[region]
		now := make(map[string]struct{}, len(nodes))
		appeared := false
		for _, n := range nodes {
			life := n + "@" + strconv.FormatInt(v.Edges[n].Started.UnixNano(), 36)
			now[life] = struct{}{}
			if _, ok := was[life]; !ok {
				appeared = true
			}
		}
		if appeared {
			vs.gen[region]++
		}
		vs.lives[region] = now
	}
	for region := range vs.lives {
		if _, ok := v.Serving[region]; !ok {
			delete(vs.lives, region) // its generation stays: whatever serves there next appears
		}
	}
}

// visitorHome is the home region of a connection routed here by a proxy of another region, or
// "" for one at home: no (signed) header, this edge's own region, or no region name at all.
func (s *Server) visitorHome(rt routing) string {
	home := rt.home
	if s.cluster == nil || home == "" || home == s.cfg.Region || ring.CheckRegion(home) != nil {
		return ""
	}
	return home
}

// arrived records sess, routed here from home. Called before the session's reader starts, so
// before it can end (left).
func (c *cluster) arrived(sess *session, home string) {
	v := c.members.View()
	c.vis.mu.Lock()
	defer c.vis.mu.Unlock()
	c.vis.noteLocked(v) // a restart in home since the last tick is not news to this visitor
	c.vis.by[sess] = &visit{home: home, gen: c.vis.gen[home], since: time.Now()}
	c.vis.count(home, 1)
}

// left forgets sess, a visitor that ended.
func (c *cluster) left(sess *session) {
	c.vis.mu.Lock()
	defer c.vis.mu.Unlock()
	if vi, ok := c.vis.by[sess]; ok {
		delete(c.vis.by, sess)
		c.vis.count(vi.home, -1)
	}
}

// sendHome starts the hand-overs home of the visitors whose home region serves again (see
// visitors): grouped by home region and by their team's owner there, each pre-warmed on that
// owner, then told goodbye moved over MoveSpread.
func (c *cluster) sendHome(s *Server) {
	if s.draining.Load() {
		return // a drain moves every session, visitors too, to this region's next owners
	}
	v := c.members.View()
	now := time.Now()
	due := map[string][]*session{} // home region → visitors going home
	c.vis.mu.Lock()
	c.vis.noteLocked(v)
	for ss, vi := range c.vis.by {
		if vi.leaving || len(v.Serving[vi.home]) == 0 {
			continue
		}
		if vi.gen != c.vis.gen[vi.home] || now.Sub(vi.since) >= c.cfg.VisitorRecheck {
			vi.leaving = true
			due[vi.home] = append(due[vi.home], ss)
		}
	}
	c.vis.mu.Unlock()
	for home, sessions := range due {
		r := v.RingOf(home)
		byOwner := map[string][]*session{}
		for _, ss := range sessions {
			owner := r.Owner(ss.team.ID())
			byOwner[owner] = append(byOwner[owner], ss)
		}
		for owner, sessions := range byOwner {
			c.goOwned(func() { c.goHome(c.ctx, s, home, owner, sessions) })
		}
	}
}

// goHome pre-warms the teams of sessions, visitors from home, on owner there, then tells them
// goodbye moved over MoveSpread. A visitor whose home region has no serving edge again by its
// turn stays, until the region serves again.
func (c *cluster) goHome(ctx context.Context, s *Server, home, owner string, sessions []*session) {
	var teams []string
	seen := map[string]bool{}
	for _, ss := range sessions {
		if id := ss.team.ID(); !seen[id] {
			seen[id] = true
			teams = append(teams, id)
		}
	}
	if err := c.prewarm(ctx, s, owner, teams); err != nil {
		s.log.Warn("visitors stay: their teams could not be pre-warmed at home", "region", home, "to", owner,
			"sessions", len(sessions), "retry_in", c.cfg.VisitorRecheck)
		for _, ss := range sessions {
			c.stays(ss)
		}
		return
	}
	s.log.Info("sending visitors home", "region", home, "to", owner, "teams", len(teams), "sessions", len(sessions), "over", c.cfg.MoveSpread)
	c.tellMoved(ctx, s, sessions, c.cfg.MoveSpread, "home", func(ss *session) bool {
		if len(c.members.View().Serving[home]) > 0 {
			return false
		}
		c.stays(ss) // home has no serving edge again
		return true
	})
}

// stays keeps ss, a visitor that was going home, here until its home region's next
// generation or VisitorRecheck from now.
func (c *cluster) stays(ss *session) {
	c.vis.mu.Lock()
	defer c.vis.mu.Unlock()
	if vi, ok := c.vis.by[ss]; ok {
		vi.leaving, vi.since, vi.gen = false, time.Now(), c.vis.gen[vi.home]
	}
}
