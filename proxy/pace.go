package proxy

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/ring"
)

// edgePace paces the new connections this proxy sends to one edge (server-paced reconnects).
//
// The pace follows what the edge announces. It starts at what the edge says it takes (its
// accept rate and burst, its own --connect-rate and --connect-burst; EdgeRate and EdgeBurst
// for an edge that does not say), so that a small herd reaches idle survivors at once, and then moves by additive increase and
// multiplicative decrease as TCP's congestion window does: at each announcement, an edge
// that says its runnable goroutines waited longer than EdgeLagTarget (its scheduling lag p99
// since its previous announcement) gets half the pace; one that says it keeps up gets a
// tenth of its accept rate more, up to that rate. (The runtime's histogram is coarse near 10 ms, buckets end at 8.4, 10.5
// and 12.6 ms, and the edge announces a bucket's upper bound: at the default target, a p99
// over 8.4 ms halves the pace.) A lost edge's herd so reaches the survivors as fast as they
// take it while still serving the clients they have, on whatever hardware, instead of at a
// rate tuned once on one machine. EdgeRateFloor keeps a herd moving when the edges are slow
// for reasons new connections do not cause.
type edgePace struct {
	*bucket.Pacer
	mu    sync.Mutex
	rate  float64 // under mu
	burst int     // under mu
}

// edgePacer is the pacer of connections to edge.
func (s *Server) edgePacer(edge string) *edgePace {
	return s.edgePacerAt(edge, s.cfg.EdgeRate, s.cfg.EdgeBurst)
}

// edgePacerAt is edge's pacer, made at rate and burst if it has none yet.
func (s *Server) edgePacerAt(edge string, rate float64, burst int) *edgePace {
	if p, ok := s.edgePace.Load(edge); ok {
		return p.(*edgePace)
	}
	p, _ := s.edgePace.LoadOrStore(edge, &edgePace{Pacer: bucket.NewPacer(rate, burst), rate: rate, burst: burst})
	return p.(*edgePace)
}

// ceiling is the most new connections a second a's edge gets: what it says it takes, or
// EdgeRate when it does not say.
func (s *Server) ceiling(a ring.Announcement) float64 {
	if a.AcceptRate > 0 {
		return a.AcceptRate
	}
	return s.cfg.EdgeRate
}

// burst is how many new connections a's edge gets at once: what it says it takes at once, or
// EdgeBurst when it does not say. (The burst does not follow the lag: a slow edge's pace
// halves, and the bucket refills at that pace.)
func (s *Server) burst(a ring.Announcement) int {
	if a.AcceptRate > 0 && a.AcceptBurst > 0 {
		return a.AcceptBurst
	}
	return s.cfg.EdgeBurst
}

// observe takes an edge's announcement: the membership first, then the edge's pace.
func (s *Server) observe(a ring.Announcement) {
	s.members.Observe(a)
	v := s.members.View()
	s.forgetPaces(v)
	if kept, ok := v.Edges[a.Node]; !ok || a.Validate() != nil || kept.Addr != a.Addr || !kept.Started.Equal(a.Started) {
		return // not taken (invalid, or a second edge under a name in use): it speaks for no edge
	}
	s.pace(a)
}

// pace steps the pace of new connections to a's edge by the lag a says it has: at each of
// its announcements, or each answer to a probe while it is not heard.
func (s *Server) pace(a ring.Announcement) {
	if s.cfg.EdgeRate <= 0 || s.cfg.EdgeLagTarget < 0 {
		return
	}
	top, burst := s.ceiling(a), s.burst(a)
	p := s.edgePacerAt(a.Node, top, burst)
	lagMS := a.LagP99MS
	p.mu.Lock()
	old := p.rate
	if lagMS > float64(s.cfg.EdgeLagTarget)/float64(time.Millisecond) {
		p.rate = max(min(s.cfg.EdgeRateFloor, top), p.rate/2)
	} else {
		p.rate = min(top, p.rate+top/10)
	}
	rate := p.rate
	if rate != old || burst != p.burst {
		p.Set(rate, burst)
		p.burst = burst
	}
	p.mu.Unlock()
	s.metrics.edgePace.WithLabelValues(a.Node).Set(rate)
	if rate != old {
		s.log.Debug("edge pace", "edge", a.Node, "lag_p99_ms", lagMS, "from", old, "to", rate)
	}
}

// forgetPaces drops the pace (and its gauge) of every edge no longer a member: a lost edge's
// last pace is not news, and edges that come and go under new names must not pile up.
func (s *Server) forgetPaces(v *ring.View) {
	s.edgePace.Range(func(k, _ any) bool {
		if _, ok := v.Edges[k.(string)]; !ok {
			s.edgePace.Delete(k)
			s.metrics.edgePace.DeleteLabelValues(k.(string))
		}
		return true
	})
}

func newPaceGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_proxy_edge_pace",
		Help: "New connections per second this proxy sends to each edge now: the accept rate the edge announces (EdgeRate when it announces none), halved while it announces a scheduling lag over the target."},
		[]string{"edge"})
}
