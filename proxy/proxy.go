// Package proxy is weft's front door: it sends every client of a team to the edge that owns the
// team, by a consistent hash with bounded loads over the live edges (internal/ring). It
// authenticates tokens itself, so bad ones never reach an edge, and it does not look inside
// WebSocket frames: after the handshake it only copies bytes.
//
// Where to start: proxy.go (Config, Server, routing and failover), tunnel.go (the /ws
// pass-through), api.go (forwarding /api calls), metrics.go.
package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/ring/probe"
	"github.com/weft-edge/weft/internal/routesig"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
)

// Verifier checks client tokens; *token.Keys implements it.
type Verifier interface {
	Verify(tok string) (token.Claims, error)
}

// Watcher delivers the edges' announcements; *pubsub.Bus and ring.Announcements implement it.
type Watcher interface {
	WatchEdges(fn func(ring.Announcement)) (stop func(), err error)
}

// Config configures a proxy. Zero values mean the default given on each field.
type Config struct {
	// Tokens verifies client tokens; required (the same secret as the edges').
	Tokens Verifier
	// RoutingKey signs the routing headers the proxy adds for the edges (internal/routesig),
	// which ignore them unsigned. Default: Tokens' RoutingKey (token.Keys has one, derived from
	// the secret the edges share); required when Tokens has none.
	RoutingKey []byte
	// Watch discovers edges from their announcements. Static lists edges (Node and Addr) that
	// are always members, for setups without discovery. At least one of the two is required.
	Watch  Watcher
	Static []ring.Announcement
	// Region is the proxy's region, which is its clients': its ring holds that region's
	// edges only (static edges naming no region are in it). Default ring.DefaultRegion.
	Region string
	// Fallback lists, in order, the regions whose edges this proxy routes to while its own
	// region has no serving edge (all dead, marked down or draining): new connections and
	// /api calls go to the owner of their team in the first of them that has one. The
	// proxy names its own region to those edges (protocol.HeaderRegion), and they send the
	// clients home when the region serves again. Empty: no fallback.
	Fallback []string
	// DownFor is how long an edge that refused a connection stays out of the ring unless it
	// announces a new life; default 5s.
	DownFor time.Duration
	// ProbeTimeout bounds one direct probe of an edge whose announcements are overdue
	// (GET /probe on the edge, internal/ring/probe): an edge that answers stays in the ring
	// however long NATS does not carry its announcements, so that a NATS outage leaves the
	// ring as it was. Default 1s; negative: no probes (an edge not heard for its TTL leaves).
	// ProbeConcurrency bounds the probes under way at once; default 16.
	ProbeTimeout     time.Duration
	ProbeConcurrency int
	// Settle is how long after Start a proxy that discovers edges waits before it says it is
	// ready: long enough to hear every edge announce (three intervals of a default edge).
	// Default 3s.
	Settle time.Duration
	// DialTimeout bounds connecting to an edge; default 2s. HandshakeTimeout bounds the edge's
	// answer to a forwarded request head; default 30s (a first connection may wait for a team
	// load).
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
	// SpareConns is how many TCP connections to each edge in use are kept dialed ahead of
	// need, so that a WebSocket setup does not wait for a connect (spares.go); default 4,
	// negative: none.
	SpareConns int
	// ConnectRate/ConnectBurst bound the WebSocket connections this proxy sets up; EdgeRate and
	// EdgeBurst those it sends to any one edge, so that after an edge is lost its clients
	// reach the survivors at a pace they can take. Past either, the client gets 429
	// rate_limited with a Retry-After spread over the time the rate needs for the refused
	// herd; an edge that announces it is not admitting (over its memory watermark) gets no
	// new connection, and its clients are told to come back later. EdgeRate is the most an
	// edge gets: the pace follows what it announces of its load (EdgeLagTarget). Defaults
	// 2000/s (burst 2000) and 150/s (burst 20) per edge from each proxy, what a storm on a
	// 2-core machine showed an edge takes in resumes while serving: a burst of 150 let the
	// first instant of a herd load every team of the lost edge at once, and undisturbed
	// requests waited behind it. A negative rate means no limit.
	ConnectRate  float64
	ConnectBurst int
	// AcceptRate/AcceptBurst pace the listener given to PaceAccepts: new TCP connections past
	// the rate wait in the kernel's queue instead of taking CPU from the open tunnels.
	// Defaults 1000/s, burst 1000 (a second of it: the clients of one lost edge are not held
	// to the rate); negative: no pacing.
	AcceptRate  float64
	AcceptBurst int
	EdgeRate    float64
	EdgeBurst   int
	// EdgeLagTarget is the scheduling lag (see edge/lag.go) an edge may announce and still
	// get more new connections; past it, the pace of new connections to it halves at each
	// announcement, down to EdgeRateFloor (see edgePace). Defaults 10ms and a third of
	// EdgeRate; a negative target keeps the pace at EdgeRate.
	EdgeLagTarget time.Duration
	EdgeRateFloor float64
	// EdgeTLS, when set, is how the proxy reaches edges: every connection to one (tunnels,
	// /api, probes) is TLS with this configuration, its ServerName the host of the edge's
	// address unless set. Nil: plain TCP, for edges on a network the operator trusts.
	EdgeTLS *tls.Config
	// ServesTLS says the proxy's clients reach it over TLS (its listener's): X-Forwarded-Proto
	// is https.
	ServesTLS bool
	// MaxBodyBytes caps an /api request body; default 1 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Registry receives the proxy's metrics; nil means a new registry (served on /metrics).
	Registry *prometheus.Registry
}

// Server is a proxy: an http.Handler for /ws, /api/<method>, /healthz, /readyz and /metrics.
type Server struct {
	cfg       Config
	log       *slog.Logger
	members   *ring.Membership
	metrics   *metrics
	mux       *http.ServeMux
	ops       *http.ServeMux // the operator's endpoints (OpsHandler)
	transport *http.Transport
	dialer    net.Dialer
	spares    *spares // nil: none
	routes    *routesig.Signer

	connects *bucket.Pacer
	edgePace sync.Map // edge → *edgePace
	prober   *probe.Client

	closing  atomic.Bool
	leaving  atomic.Bool // Leave: not ready, still serving
	tunnelMu sync.Mutex
	tunnels  map[*tunnel]struct{}
	wg       sync.WaitGroup // the tunnels' copying goroutines and the membership's expiry
	ctx      context.Context
	cancel   context.CancelFunc
	stop     func()
	started  time.Time
}

// New validates cfg and builds the proxy. It starts nothing; Start does.
func New(cfg Config) (*Server, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("proxy: Config needs Tokens")
	}
	if cfg.Watch == nil && len(cfg.Static) == 0 {
		return nil, errors.New("proxy: Config needs Watch or Static edges")
	}
	if rk, ok := cfg.Tokens.(interface{ RoutingKey() []byte }); ok && cfg.RoutingKey == nil {
		cfg.RoutingKey = rk.RoutingKey()
	}
	routes, err := routesig.New(cfg.RoutingKey)
	if err != nil {
		return nil, fmt.Errorf("proxy: Config.RoutingKey: %w", err)
	}
	cfg.Region = ring.RegionOr(cfg.Region)
	if err := CheckRegions(cfg.Region, cfg.Fallback); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	setDefault(&cfg.DownFor, 5*time.Second)
	setDefault(&cfg.DialTimeout, 2*time.Second)
	setDefault(&cfg.Settle, 3*time.Second)
	setDefault(&cfg.HandshakeTimeout, 30*time.Second)
	setDefault(&cfg.MaxBodyBytes, 1<<20)
	if cfg.ConnectRate == 0 {
		cfg.ConnectRate = 2000
	}
	setDefault(&cfg.ConnectBurst, 2000)
	if cfg.EdgeRate == 0 {
		cfg.EdgeRate = 150
	}
	if cfg.AcceptRate == 0 {
		cfg.AcceptRate = 1000
	}
	setDefault(&cfg.AcceptBurst, 1000)
	setDefault(&cfg.EdgeBurst, 20)
	if cfg.EdgeLagTarget == 0 {
		cfg.EdgeLagTarget = 10 * time.Millisecond
	}
	if cfg.EdgeRateFloor <= 0 {
		cfg.EdgeRateFloor = cfg.EdgeRate / 3
	}
	if cfg.EdgeRate > 0 {
		cfg.EdgeRateFloor = min(cfg.EdgeRateFloor, cfg.EdgeRate) // a floor over the cap would make lag raise the pace
	}
	s := &Server{cfg: cfg, log: cfg.Logger, dialer: net.Dialer{Timeout: cfg.DialTimeout},
		connects: bucket.NewPacer(cfg.ConnectRate, cfg.ConnectBurst), tunnels: make(map[*tunnel]struct{}), routes: routes}
	s.metrics = newMetrics(cfg.Registry, s)
	if cfg.SpareConns >= 0 {
		s.spares = newSpares(s, cmp.Or(cfg.SpareConns, 4))
	}
	mc := ring.MembershipConfig{Region: cfg.Region, Static: cfg.Static, DownFor: cfg.DownFor, Logger: cfg.Logger,
		OnChange: s.ringChanged}
	if cfg.Watch != nil && cfg.ProbeTimeout >= 0 { // static edges never leave: nothing to probe
		s.prober = probe.New(cfg.EdgeTLS)
		s.prober.Sign = func() string { return s.routes.Sign(time.Now(), routesig.Route{Path: probe.Path}) }
		mc.Probe, mc.ProbeTimeout, mc.ProbeConcurrency = s.probe, cfg.ProbeTimeout, cfg.ProbeConcurrency
	}
	s.members = ring.NewMembership(mc)
	s.transport = &http.Transport{
		DialContext:         s.dialer.DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// The proxy speaks HTTP/1.1 to edges, over TLS when told to; no proxy-of-the-proxy.
		Proxy:               nil,
		TLSClientConfig:     cfg.EdgeTLS,
		TLSHandshakeTimeout: cfg.DialTimeout,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /ws", s.handleWS)
	s.mux.HandleFunc("/api/{method}", s.handleAPI)
	// For load balancers: a status and a word, nothing an outsider could learn from.
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, _ := s.readiness(); !ok {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s.ops = http.NewServeMux()
	s.ops.Handle("GET /metrics", s.metrics.handler())
	s.ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.ops.HandleFunc("GET /readyz", s.handleReady)
	return s, nil
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Start subscribes to the edges' announcements and starts expiring silent edges.
func (s *Server) Start() error {
	s.started = time.Now()
	if s.cfg.Watch != nil {
		stop, err := s.cfg.Watch.WatchEdges(s.observe)
		if err != nil {
			return err
		}
		s.stop = stop
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.members.Run(s.ctx, 250*time.Millisecond)
	}()
	return nil
}

// Membership is the proxy's view of the edges and the ring.
func (s *Server) Membership() *ring.Membership { return s.members }

// CheckRegions reports what is wrong with a proxy's region and fallback list: a name that is
// no region name, the own region among the fallbacks, a fallback named twice.
func CheckRegions(region string, fallback []string) error {
	if err := ring.CheckRegion(region); err != nil {
		return err
	}
	for i, fb := range fallback {
		if err := ring.CheckRegion(fb); err != nil {
			return fmt.Errorf("fallback %w", err)
		}
		if fb == region {
			return fmt.Errorf("fallback region %q is the proxy's own region", fb)
		}
		if slices.Contains(fallback[:i], fb) {
			return fmt.Errorf("fallback region %q is listed twice", fb)
		}
	}
	return nil
}

// routing is the region this proxy routes by in v, and its ring: its own region's while an
// edge serves there, else the first fallback region's that has one (else its own, empty).
func (s *Server) routing(v *ring.View) (string, *ring.Ring) {
	region := s.routingRegion(v)
	return region, v.RingOf(region)
}

// routingRegion is routing's region, without building its ring.
func (s *Server) routingRegion(v *ring.View) string {
	if len(v.Ring.Nodes()) > 0 {
		return v.Region
	}
	for _, fb := range s.cfg.Fallback {
		if len(v.Serving[fb]) > 0 {
			return fb
		}
	}
	return v.Region
}

// ringChanged is the membership's OnChange: it keeps the ring gauges and says when routing
// moves to a fallback region and back. Under the membership's lock: nothing here calls back.
func (s *Server) ringChanged(old, v *ring.View) {
	if v.Ring != old.Ring { // the own region's ring, not another's
		s.metrics.ringChanges.Inc()
		s.metrics.ringEdges.Set(float64(len(v.Ring.Nodes())))
	}
	for region, nodes := range v.Serving {
		s.metrics.regionEdges.WithLabelValues(region).Set(float64(len(nodes)))
	}
	for region := range old.Serving {
		if _, ok := v.Serving[region]; !ok {
			s.metrics.regionEdges.WithLabelValues(region).Set(0)
		}
	}
	was, now := s.routingRegion(old), s.routingRegion(v)
	switch {
	case was == now:
	case now != v.Region:
		s.log.Warn("no edge serves in this proxy's region: routing to a fallback region", "region", v.Region, "fallback", now)
	case len(v.Ring.Nodes()) > 0:
		s.log.Info("an edge serves in this proxy's region again: routing there", "region", v.Region, "edges", v.Ring.Key())
	default:
		s.log.Warn("no edge serves in this proxy's region nor in its fallback regions", "region", v.Region,
			"fallback", strings.Join(s.cfg.Fallback, ","))
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Leave makes the proxy say it is not ready (/readyz 503) while it goes on serving: the first
// step of a stop behind a load balancer, which takes a few seconds to see a readiness change
// (Kubernetes' endpoints, a cloud balancer's health check). Clients it still sends meanwhile
// are served, not refused; Shutdown follows.
func (s *Server) Leave() { s.leaving.Store(true) }

// Shutdown stops taking connections and closes the open tunnels, whose clients reconnect
// through another proxy; run it after the http.Server's own Shutdown (which does not track
// hijacked connections).
func (s *Server) Shutdown(ctx context.Context) error {
	s.tunnelMu.Lock()
	s.closing.Store(true)
	for t := range s.tunnels {
		t.close()
	}
	s.tunnelMu.Unlock()
	if s.stop != nil {
		s.stop()
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.transport.CloseIdleConnections()
		if s.prober != nil {
			s.prober.Close()
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.readiness()
	if !ok {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte(why + "\n"))
}

// OpsHandler serves the operator's endpoints (serve.Process.ServeOps, never the client port):
// /metrics, /healthz and /readyz saying why.
func (s *Server) OpsHandler() http.Handler { return s.ops }

// readiness says whether the proxy takes clients, and why, for the operator.
func (s *Server) readiness() (bool, string) {
	v := s.members.View()
	region, rg := s.routing(v)
	switch {
	case s.closing.Load():
		return false, "shutting down"
	case s.leaving.Load():
		return false, "leaving: shutting down once the load balancer has stopped sending clients here"
	case len(rg.Nodes()) == 0 && len(s.cfg.Fallback) > 0:
		return false, fmt.Sprintf("no edge serves in region %s nor in its fallback regions %s", v.Region,
			strings.Join(s.cfg.Fallback, ","))
	case len(rg.Nodes()) == 0:
		return false, "no edge serves"
	case s.cfg.Watch != nil && time.Since(s.started) < s.cfg.Settle:
		// Until every edge had the time to be heard, the ring may hold only some of them
		// and send most teams to the wrong edge.
		return false, "still learning the edges"
	case region != v.Region:
		// Still ready: clients are served, by another region's edges. Said for the operator.
		return true, fmt.Sprintf("ready (routing on fallback region %s: no edge serves in region %s)", region, v.Region)
	case len(v.Probed) > 0:
		// Still ready: the edges serve, and every proxy that lost NATS routes on the same
		// last ring. Said for the operator.
		return true, fmt.Sprintf("ready (routing on a ring kept by probes: %d of %d edges not heard on NATS: %s)",
			len(v.Probed), len(v.Edges), strings.Join(v.Probed, ","))
	}
	return true, "ready"
}

// probe asks an edge whose announcements are overdue directly (the membership's Probe, run
// off the request path), counts the outcome, and paces new connections to the edge by its
// answer as by an announcement: the answer comes once per announcement interval.
func (s *Server) probe(ctx context.Context, last ring.Announcement) (ring.Announcement, error) {
	a, err := s.prober.Probe(ctx, last)
	if err != nil {
		s.metrics.probes.WithLabelValues("failed").Inc()
		s.log.Debug("probe failed", "edge", last.Node, "err", err)
		return a, err
	}
	s.metrics.probes.WithLabelValues("answered").Inc()
	s.pace(a)
	return a, nil
}

// authenticate reads the caller's team from its token; on failure it has answered 401.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, find func(*http.Request) (string, bool)) (token.Claims, bool) {
	tok, ok := find(r)
	if !ok {
		s.metrics.refused.WithLabelValues("invalid_auth").Inc()
		writeError(w, http.StatusUnauthorized, protocol.CodeInvalidAuth, token.Missing(r), 0)
		return token.Claims{}, false
	}
	c, err := s.cfg.Tokens.Verify(tok)
	if err != nil {
		s.metrics.refused.WithLabelValues("invalid_auth").Inc()
		writeError(w, http.StatusUnauthorized, protocol.CodeInvalidAuth, err.Error(), 0)
		return token.Claims{}, false
	}
	return c, true
}

// attempt is one try at an edge: refused reports that the edge refused or could not be
// connected to before anything was said to the client, so the next owner may be tried.
type attempt func(node, addr, excluded string) (refused bool, reason string)

// route runs try against the owner of team and, while owners refuse, marks each down and
// tries the next; every proxy and edge computes the same next owner once the refusing edge
// leaves their rings too. The owner is in this proxy's region while an edge serves there, else
// in the first fallback region that has one (routing): the region's last edge refusing moves
// the request on to the fallback at once. It has answered the client when it returns (unless
// the client left).
func (s *Server) route(w http.ResponseWriter, r *http.Request, team string, try attempt) {
	v := s.members.View()
	for range len(v.Edges) + 1 { // each round marks an edge down
		region, rg := s.routing(v)
		node := rg.Owner(team)
		if node == "" {
			break
		}
		if r.Context().Err() != nil {
			return // the client left: nothing to answer, and no edge to blame
		}
		s.metrics.routes.WithLabelValues(node).Inc()
		if region != v.Region {
			s.metrics.fallbackRoutes.WithLabelValues(region).Inc()
		}
		refused, reason := try(node, v.Addr(node), strings.Join(v.Down, ","))
		if !refused {
			return
		}
		s.metrics.upstreamFailures.WithLabelValues(node, reason).Inc()
		s.log.Warn("edge refused; trying the next owner", "edge", node, "team", team, "why", reason)
		v = s.members.MarkDown(node)
	}
	s.metrics.refused.WithLabelValues("no_edge").Inc()
	writeError(w, http.StatusServiceUnavailable, protocol.CodeOverloaded, "no edge can take this team now",
		time.Second+rand.N(2*time.Second))
}

// paced refuses a connection to come back after a while.
func (s *Server) paced(w http.ResponseWriter, reason string, status int, code string, after time.Duration) {
	s.metrics.refused.WithLabelValues(reason).Inc()
	writeError(w, status, code, "too many connections now ("+reason+"): come back later", max(after, time.Millisecond))
}

// writeError answers with the protocol's error body.
func writeError(w http.ResponseWriter, status int, code, msg string, retry time.Duration) {
	e := &protocol.Error{Code: code, Message: msg}
	if retry > 0 {
		e.RetryAfterMS = max(retry.Milliseconds(), 1)
	}
	protocol.WriteError(w, status, e)
}

// clientIP is the remote host of r, for X-Forwarded-For.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
