package proxy

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-edge/weft/internal/version"
)

type metrics struct {
	reg              *prometheus.Registry
	routes           *prometheus.CounterVec
	upstreamFailures *prometheus.CounterVec
	refused          *prometheus.CounterVec
	ringChanges      prometheus.Counter
	ringEdges        prometheus.Gauge
	connections      prometheus.Counter
	open             prometheus.Gauge
	handshake        prometheus.Histogram
	acceptWaits      prometheus.Counter
	edgePace         *prometheus.GaugeVec
	probes           *prometheus.CounterVec
	fallbackRoutes   *prometheus.CounterVec
	regionEdges      *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry, s *Server) *metrics {
	m := &metrics{
		reg: reg,
		routes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_routes_total",
			Help: "Requests and connections sent to each edge (a failover counts once per edge tried)."}, []string{"edge"}),
		upstreamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_upstream_failures_total",
			Help: "Edges that refused or could not be reached, by edge and why (unreachable, no_answer, draining)."},
			[]string{"edge", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_refused_total",
			Help: "Requests the proxy answered itself, by why (invalid_auth, no_edge, proxy_connects, edge_paced, edge_not_admitting, subprotocol, body, method_not_allowed)."}, []string{"reason"}),
		ringChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_proxy_ring_changes_total",
			Help: "Changes of the ring of serving edges."}),
		ringEdges: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_proxy_ring_edges",
			Help: "Edges in the ring now."}),
		connections: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_proxy_connections_total",
			Help: "WebSocket connections proxied (upgraded by an edge)."}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_proxy_connections",
			Help: "WebSocket connections open through the proxy."}),
		handshake: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weft_proxy_handshake_seconds",
			Help:    "Time from dialling an edge until its answer to a WebSocket handshake (the edge's session start included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
		acceptWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_proxy_accept_waits_total",
			Help: "Times the listener held off accepting: new connections arrived faster than the accept rate."}),
		edgePace: newPaceGauge(),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_probes_total",
			Help: "Direct probes of edges whose announcements were overdue, by outcome (answered, failed)."}, []string{"outcome"}),
		fallbackRoutes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_proxy_fallback_routes_total",
			Help: "Requests and connections sent to an edge of a fallback region (this proxy's region had no serving edge), by that region."},
			[]string{"region"}),
		regionEdges: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_proxy_region_edges",
			Help: "Serving edges this proxy knows in each region (its own region's are its ring)."}, []string{"region"}),
	}
	// Every reason shows from the start, at 0: a rate over a series born at its first
	// refusal misses that refusal, and an alert on it would wait for the second.
	for _, why := range []string{"invalid_auth", "no_edge", "proxy_connects", "edge_paced", "edge_not_admitting", "subprotocol", "body", "method_not_allowed"} {
		m.refused.WithLabelValues(why)
	}
	reg.MustRegister(m.routes, m.upstreamFailures, m.refused, m.ringChanges, m.ringEdges, m.connections, m.open,
		m.handshake, m.acceptWaits, m.edgePace, m.probes, m.fallbackRoutes, m.regionEdges,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_proxy_info", Help: "Always 1: its label names this proxy's region.",
			ConstLabels: prometheus.Labels{"region": s.cfg.Region}}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_proxy_routing_fallback",
			Help: "1 while this proxy routes to a fallback region: its own region has no serving edge."},
			func() float64 {
				if s.routingRegion(s.members.View()) != s.cfg.Region {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_proxy_edges_probed",
			Help: "Edges not heard on their announcements for their TTL, kept in the ring because they answer probes (NATS down: the ring is the last one heard)."},
			func() float64 { return float64(len(s.members.View().Probed)) }))
	m.probes.WithLabelValues("answered") // both shown from the start, at 0
	m.probes.WithLabelValues("failed")
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	_ = reg.Register(version.Collector())
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
