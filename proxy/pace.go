package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/pubsub"
)

// edgePace paces the new connections this proxy sends to one edge (server-paced reconnects).
//
// The pace follows what the edge announces, additive increase and multiplicative decrease
// as TCP's congestion window does: an edge that says its runnable goroutines waited longer
// than EdgeLagTarget (its scheduling lag p99 over the last second) gets half the pace; one
// that says it keeps up gets a tenth of EdgeRate more, up to EdgeRate. A lost edge's herd so
// reaches the survivors as fast as they take it while still serving the clients they have,
// on whatever hardware, instead of at a rate tuned once on one machine. EdgeRateFloor keeps
// a herd moving when the edges are slow for reasons new connections do not cause.
type edgePace struct {
	*bucket.Pacer
	mu   sync.Mutex
	rate float64 // under mu
}

// edgePacer is the pacer of connections to edge.
func (s *Server) edgePacer(edge string) *edgePace {
	if p, ok := s.edgePace.Load(edge); ok {
		return p.(*edgePace)
	}
	p, _ := s.edgePace.LoadOrStore(edge, &edgePace{Pacer: bucket.NewPacer(s.cfg.EdgeRate, s.cfg.EdgeBurst), rate: s.cfg.EdgeRate})
	return p.(*edgePace)
}

// observe takes an edge's announcement: the membership first, then the edge's pace.
func (s *Server) observe(a pubsub.Announcement) {
	s.members.Observe(a)
	if s.cfg.EdgeRate <= 0 || s.cfg.EdgeLagTarget < 0 || a.Validate() != nil {
		return
	}
	p := s.edgePacer(a.Node)
	lagMS := a.LagP99MS
	p.mu.Lock()
	old := p.rate
	if lagMS > float64(s.cfg.EdgeLagTarget.Milliseconds()) {
		p.rate = max(s.cfg.EdgeRateFloor, p.rate/2)
	} else {
		p.rate = min(s.cfg.EdgeRate, p.rate+s.cfg.EdgeRate/10)
	}
	rate := p.rate
	if rate != old {
		p.Set(rate, s.cfg.EdgeBurst)
	}
	p.mu.Unlock()
	s.metrics.edgePace.WithLabelValues(a.Node).Set(rate)
	if rate != old {
		s.log.Debug("edge pace", "edge", a.Node, "lag_p99_ms", lagMS, "from", old, "to", rate)
	}
}

func newPaceGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_proxy_edge_pace",
		Help: "New connections per second this proxy sends to each edge now: EdgeRate, halved while the edge announces a scheduling lag over the target."},
		[]string{"edge"})
}
