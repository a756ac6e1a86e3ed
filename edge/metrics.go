package edge

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/version"
	"github.com/weft-edge/weft/protocol"
)

// metrics are the node's Prometheus series, all in one place.
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec // method, outcome ("ok" or an error code)
	latency       *prometheus.HistogramVec
	eventsIn      prometheus.Counter
	eventsOut     prometheus.Counter
	eventsCut     *prometheus.CounterVec // type, why
	slowConsumers prometheus.Counter
	policyCloses  prometheus.Counter
	goodbyes      *prometheus.CounterVec
	resumes       *prometheus.CounterVec
	loadSeconds   prometheus.Histogram
	sessionStart  *prometheus.HistogramVec
	// The phases of sessionStart, resolved once: every connection observes them.
	startTeam, startReplay, startTotal prometheus.Observer
	loadFailures                       prometheus.Counter
	indexSeconds                       *prometheus.HistogramVec // part: prefix, fuzzy
	pauses                             *prometheus.CounterVec
	shed                               *prometheus.CounterVec
	replays                            *prometheus.CounterVec
	shedUnloads                        prometheus.Counter
	admissionChanges                   *prometheus.CounterVec
	throttled                          prometheus.Gauge
	// sessionsEnded counts sessions by why they ended (end.go), one series per endReason,
	// resolved once: every session counts itself.
	sessionsEnded *prometheus.CounterVec
	ended         [numEndReasons]prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, s *Server) *metrics {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_requests_total",
			Help: "Requests by method and outcome (ok or the error code)."}, []string{"method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weft_edge_request_seconds",
			Help:    "Time to answer a request, by method.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1, 0.5, 2}},
			[]string{"method"}),
		eventsIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_edge_events_in_total",
			Help: "Team events applied from the feed."}),
		eventsOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_edge_events_out_total",
			Help: "Event frames queued to sessions."}),
		eventsCut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_events_cut_total",
			Help: "Event frames sent cut (a message's text shortened, an object replaced by its ID), by event type and why: too_large, over --max-event-bytes. Each is counted once per encoding (once per fan-out, once per resume that replays it)."},
			[]string{"type", "why"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_edge_slow_consumer_closes_total",
			Help: "Sessions closed because their outbound queue passed its bound."}),
		policyCloses: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_edge_policy_closes_total",
			Help: "Sessions closed for breaking the protocol repeatedly."}),
		goodbyes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_goodbyes_total",
			Help: "Goodbye frames sent, by reason."}, []string{"reason"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_resumes_total",
			Help: "Connections that asked to resume, by whether it was honoured."}, []string{"resumed"}),
		loadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weft_edge_team_load_seconds",
			Help: "Duration of successful team loads.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}),
		sessionStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weft_edge_session_start_seconds",
			Help:    "Time from a WebSocket request's arrival until its session's hello is queued (total), and the part of it spent waiting for the team (team) and reading a resume's replay (replay).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}, []string{"phase"}),
		loadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_edge_team_load_failures_total",
			Help: "Team loads that failed."}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_session_pauses_total",
			Help: "Times a session stopped reading, by reason (requests: over its request quota; outbound: its client is not reading)."},
			[]string{"reason"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_shed_total",
			Help: "Work refused: for memory (connection, team_load, fuzzy_index), during a surge of team loads (fuzzy_index_surge: typo-fallback builds wait) or over a connection rate (node_connects, team_connects)."}, []string{"what"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_resume_replays_total",
			Help: "Resume replays by source: memory (the team's recent events), stream_shared (one stream read for many), stream."},
			[]string{"source"}),
		shedUnloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_edge_shed_unloads_total",
			Help: "Idle teams unloaded because memory was critical."}),
		admissionChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_admission_changes_total",
			Help: "Changes of admission level, by the level entered."}, []string{"level"}),
		throttled: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_edge_sessions_throttled",
			Help: "Sessions not reading now because of a pause."}),
		indexSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weft_edge_index_build_seconds",
			Help:    "Time to build a team's autocomplete index: the prefix path, then the typo fallback.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}, []string{"part"}),
	}
	// Label values known in advance show from the start, at 0 (as sessions ended does, below): a
	// rate over a series born at its first count misses that count.
	zero := map[*prometheus.CounterVec][]string{
		m.resumes:          {"true", "false"},
		m.pauses:           {"requests", "outbound"},
		m.shed:             {"connection", "team_load", "fuzzy_index", "fuzzy_index_surge", "node_connects", "team_connects"},
		m.replays:          {"memory", "stream_shared", "stream"},
		m.admissionChanges: levelNames[:],
	}
	for vec, values := range zero {
		for _, v := range values {
			vec.WithLabelValues(v)
		}
	}
	reg.MustRegister(m.requests, m.latency, m.eventsIn, m.eventsOut, m.eventsCut, m.slowConsumers, m.policyCloses,
		m.goodbyes, m.resumes, m.loadSeconds, m.sessionStart, m.loadFailures, m.indexSeconds, indexBytes{s}, m.pauses, m.throttled,
		m.shed, m.shedUnloads, m.admissionChanges, m.replays,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_admission_level",
			Help: "Memory admission: 0 normal, 1 high (refusing new work), 2 critical (shedding)."}, func() float64 {
			if s.admit == nil {
				return 0
			}
			return float64(s.admit.level.Load())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_origin_circuit",
			Help: "The origin circuit breaker: 0 closed, 1 half-open (probing), 2 open (failing fast)."}, func() float64 {
			if s.cfg.Breaker == nil {
				return 0
			}
			switch s.cfg.Breaker.State() {
			case "half-open":
				return 1
			case "open":
				return 2
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_admission_heap_bytes",
			Help: "The memory admission last sampled: what the Go runtime holds (heap, stacks, its own), as GOMEMLIMIT counts it (0 without a memory budget)."}, func() float64 {
			if s.admit == nil {
				return 0
			}
			return float64(s.admit.heap.Load())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_info",
			Help:        "Always 1: its labels name this edge and its region.",
			ConstLabels: prometheus.Labels{"node": s.cfg.Node, "region": s.cfg.Region}}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_connections",
			Help: "Open WebSocket sessions."}, func() float64 { return float64(s.Sessions()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_teams_loaded",
			Help: "Teams loaded on this node."}, func() float64 { return float64(s.teams.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_edge_cache_bytes",
			Help: "Estimated memory held by the loaded teams' stores."}, func() float64 {
			var n int64
			for _, t := range s.teams.Stats() {
				n += t.Bytes
			}
			return float64(n)
		}),
	)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_edge_team_reloads_total",
		Help: "Teams rebuilt from the origin because their feed lost events the stream no longer held."},
		func() float64 { return float64(s.teams.Reloads()) }))
	// The feed's own series, when it has them: *pubsub.Bus reports its NATS connection
	// (weft_nats_*: connected, reconnects, pending bytes, slow consumers) and its team feeds
	// (weft_feed_*: gaps detected and filled, events fetched from the stream, unfillable gaps,
	// lag, teams following no feed). Edges of one process sharing a feed and a registry
	// register them once.
	if f, ok := s.cfg.Cache.Feed.(feedMetrics); ok {
		_ = reg.Register(f.ConnMetrics())
		_ = reg.Register(f.Collector())
	}
	// The process and Go runtime collectors may already be in a shared registry.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	_ = reg.Register(version.Collector())
	m.startTeam = m.sessionStart.WithLabelValues("team")
	m.startReplay = m.sessionStart.WithLabelValues("replay")
	m.startTotal = m.sessionStart.WithLabelValues("total")
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_edge_sessions_ended_total",
		Help: "WebSocket sessions ended, by why: the client closed (client_closed), reading or writing failed (read_error, write_error), a frame over the hard limit (too_large), silent for the idle timeout (idle), a write past the write timeout (write_timeout), or a goodbye (slow_consumer, policy, moved, draining, and reload: draining after the team lost events); unknown would be a bug."},
		[]string{"reason"})
	reg.MustRegister(m.sessionsEnded)
	for r := range numEndReasons {
		m.ended[r] = m.sessionsEnded.WithLabelValues(r.String()) // every reason shows from the start, at 0
	}
	return m
}

// feedMetrics is what a feed may show on the edge's /metrics; *pubsub.Bus implements it.
type feedMetrics interface {
	ConnMetrics() prometheus.Collector
	Collector() prometheus.Collector
}

func (m *metrics) sessionEnded(r endReason) { m.ended[r].Inc() }

func (m *metrics) onPause(reason string) { m.pauses.WithLabelValues(reason).Inc() }
func (m *metrics) onThrottled(delta int) { m.throttled.Add(float64(delta)) }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) observe(method string, e *protocol.Error, took time.Duration) {
	outcome := "ok"
	if e != nil {
		outcome = e.Code
	}
	m.requests.WithLabelValues(method, outcome).Inc()
	m.latency.WithLabelValues(method).Observe(took.Seconds())
}

func (m *metrics) indexBuilt(fuzzy bool, took time.Duration) {
	part := "prefix"
	if fuzzy {
		part = "fuzzy"
	}
	m.indexSeconds.WithLabelValues(part).Observe(took.Seconds())
}

// indexBytes reports the loaded teams' autocomplete index memory when scraped: the sum and the
// largest team's, with no team in any label (an ID is the tenant's business, and a label per
// team grows without bound); which teams, is the operator listener's /debug/teams.
type indexBytes struct{ s *Server }

var (
	indexBytesDesc = prometheus.NewDesc("weft_edge_index_bytes",
		"Estimated memory of the loaded teams' autocomplete indexes, by part: the prefix path and bleve's typo fallback.",
		[]string{"part"}, nil)
	indexBytesMaxDesc = prometheus.NewDesc("weft_edge_index_bytes_max",
		"The largest loaded team's autocomplete index memory, by part (which team: /debug/teams on the operator listener).",
		[]string{"part"}, nil)
)

func (c indexBytes) Describe(ch chan<- *prometheus.Desc) {
	ch <- indexBytesDesc
	ch <- indexBytesMaxDesc
}

func (c indexBytes) Collect(ch chan<- prometheus.Metric) {
	var sum, most [2]float64 // prefix, fuzzy
	for _, t := range c.s.teamFigures() {
		for i, v := range [2]float64{float64(t.IndexBytes), float64(t.FuzzyBytes)} {
			sum[i] += v
			most[i] = max(most[i], v)
		}
	}
	for i, part := range [2]string{"prefix", "fuzzy"} {
		ch <- prometheus.MustNewConstMetric(indexBytesDesc, prometheus.GaugeValue, sum[i], part)
		ch <- prometheus.MustNewConstMetric(indexBytesMaxDesc, prometheus.GaugeValue, most[i], part)
	}
}

// teamFigure is what /debug/teams says of a loaded team.
type teamFigure struct {
	Team       string `json:"team"`
	Sessions   int    `json:"sessions"`
	IndexBytes int64  `json:"index_bytes"`
	FuzzyBytes int64  `json:"fuzzy_bytes"`
}

// teamFigures is every loaded team's figures.
func (s *Server) teamFigures() []teamFigure {
	var out []teamFigure
	for _, id := range s.teams.IDs() {
		t := s.teams.Lookup(id)
		if t == nil {
			continue
		}
		f := teamFigure{Team: id}
		if x, ok := t.Store().Follower().(*index.Index); ok {
			st := x.Stats()
			f.IndexBytes, f.FuzzyBytes = int64(st.Bytes), int64(st.FuzzyBytes)
		}
		if h, ok := s.hubs.Load(id); ok {
			f.Sessions = h.(*hub).size()
		}
		out = append(out, f)
	}
	return out
}

// handleTeams answers /debug/teams on the operator listener: the loaded teams with the most
// sessions first (then the biggest indexes), ?n= of them (default 20).
func (s *Server) handleTeams(w http.ResponseWriter, r *http.Request) {
	n := 20
	if v := r.URL.Query().Get("n"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			http.Error(w, "n: want a positive integer", http.StatusBadRequest)
			return
		}
		n = k
	}
	ts := s.teamFigures()
	slices.SortFunc(ts, func(a, b teamFigure) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(b.IndexBytes+b.FuzzyBytes, a.IndexBytes+a.FuzzyBytes),
			strings.Compare(a.Team, b.Team))
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Loaded int          `json:"loaded"`
		Teams  []teamFigure `json:"teams"`
	}{len(ts), ts[:min(n, len(ts))]})
}

func (m *metrics) loaded(took time.Duration, err error) {
	if err != nil {
		m.loadFailures.Inc()
		return
	}
	m.loadSeconds.Observe(took.Seconds())
}
