package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/ring/probe"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// Replayer reads a range of a team's events from the stream; *pubsub.Bus implements it.
type Replayer interface {
	Replay(ctx context.Context, team string, afterSeq, uptoSeq int64, fn func(*origin.Event) error) error
}

// Verifier checks client tokens; *token.Keys implements it.
type Verifier interface {
	Verify(tok string) (token.Claims, error)
}

// Config configures an edge node. Zero values mean the default given on each field.
type Config struct {
	// Cache configures the node's team set (Origin and Feed are required). The edge sets its
	// Hooks; any hooks given here are called too, after the edge's.
	Cache cache.Config
	// Replay reads missed events for resuming connections; required.
	Replay Replayer
	// Tokens verifies client tokens; required.
	Tokens Verifier
	// RoutingKeys verify the signature of the routing headers a proxy sends
	// (internal/routesig); unsigned ones are ignored. Default: Tokens' RoutingKeys (token.Keys
	// has one per secret, derived from the secrets the proxies share); none: routing headers
	// are always ignored.
	RoutingKeys [][]byte
	// CursorKeys seal the paging cursors the edge hands out (32 bytes each; the first seals,
	// all open). Default: derived from Tokens' secrets (token.Keys.Derived), which every edge
	// shares, so a cursor survives its team's move to another edge; else a random key.
	CursorKeys [][]byte
	// Node names this node in hello frames and metrics; default "edge".
	Node string
	// Region is the node's region, shown in hello frames and metrics (weft_edge_info); in a
	// cluster it is announced, and the node's ring is its region's edges. Default
	// ring.DefaultRegion.
	Region string
	Logger *slog.Logger
	// Registry receives the node's metrics; nil means a new registry (served on /metrics).
	Registry *prometheus.Registry
	// HeartbeatInterval is announced in hello; a connection silent for IdleTimeout is closed.
	// Defaults 30s and 3 × HeartbeatInterval.
	HeartbeatInterval time.Duration
	IdleTimeout       time.Duration
	// QueueBytes bounds a session's outbound queue. A session whose queue is over it and whose
	// writer has finished no frame for StallTimeout is closed as a slow consumer, and so is one
	// whose queue passes 4 × QueueBytes (session.go, sendLocked); either way its goodbye gets
	// StallTimeout to be written before the session ends. Defaults 1 MiB and 2s.
	QueueBytes   int
	StallTimeout time.Duration
	// WriteTimeout bounds every write to a client; default 10s.
	WriteTimeout time.Duration
	// Writers is how many goroutines write the sessions' frames (writers.go); default
	// GOMAXPROCS. Negative: none, every session's writes run on a goroutine of its own while
	// it has frames queued (the design before the pool, kept to measure against).
	Writers int
	// MaxFrameBytes bounds a client frame, default 64 KiB (larger frames get too_large; frames
	// past 16× that close the connection).
	MaxFrameBytes int
	// RequestRate and RequestBurst are each session's request quota (a token bucket): past it
	// requests get rate_limited with retry_after_ms and the session stops reading until the
	// bucket has a token again. Each user's /api calls have a quota of the same rate and burst
	// (a 429 rate_limited past it). Defaults 100/s and 200; a negative rate means no quota.
	RequestRate  float64
	RequestBurst int
	// ConnectRate/ConnectBurst bound new connections to the node, TeamConnectRate/Burst those
	// of one team: past them the handshake gets 429 rate_limited with a Retry-After spread over
	// the time the rate needs for the refused herd. Defaults 1000/s (burst 1000) and 200/s
	// (burst 400); a negative rate means no limit.
	ConnectRate      float64
	ConnectBurst     int
	TeamConnectRate  float64
	TeamConnectBurst int
	// PolicyStrikes is how many protocol errors (net of good requests) a connection may make
	// before goodbye policy; default 16.
	PolicyStrikes int
	// MaxReplay caps the events replayed to one resuming connection; further back than that
	// answers resumed:false. Default 10,000.
	MaxReplay int
	// RecentEvents is how many of each team's latest events the node keeps for resumes
	// (recent.go); default 512, negative: none (every resume reads the stream).
	RecentEvents int
	// RecentBytes bounds the same events by their size on the bus, per team: a burst of large
	// events (a 48 KiB message, 512 times) would otherwise hold 24 MiB per team. Default 4 MiB;
	// at least the latest event is always kept.
	RecentBytes int
	// MaxEventBytes bounds an event's frame (before annotations): an event over it is sent
	// cut, marked so (cut.go), and counted in weft_edge_events_cut_total. Default 256 KiB;
	// negative: no bound.
	MaxEventBytes int
	// DrainSpread is the window over which draining sessions are told to reconnect (each gets
	// a random reconnect_after_ms in it); default 5s.
	DrainSpread time.Duration
	// JITObjects is the size of each session's record of objects recently sent to its client,
	// which decides what events are annotated with (docs/protocol.md section 6); default 512.
	JITObjects int
	// Annotate chooses what events carry; default AnnotateJIT. The others are baselines.
	Annotate AnnotateMode
	// Breaker is the origin client's guard, when it has one: its state is shown on /readyz
	// and in the metrics.
	Breaker interface{ State() string }
	// SurgeLoads team loads started within SurgeWindow make a surge (this node is taking over
	// another's teams): while it lasts, typo-fallback index builds wait for a search that
	// needs them (surge.go). Defaults 8 and 10s; negative SurgeLoads: never.
	SurgeLoads  int
	SurgeWindow time.Duration
	// Admission is memory-based admission control (admission.go); zero Budget: none.
	Admission AdmissionConfig
	// Cluster, when set, makes the node one of a ring of edges behind proxies (cluster.go):
	// it announces itself, checks that it owns the teams of new connections, and moves
	// sessions when the ring gives their team to another edge. Nil: a standalone node.
	Cluster *ClusterConfig
	// Index tunes every loaded team's autocomplete index. The edge sets Cache.Follow to build
	// them and wraps OnBuild for its metrics.
	Index index.Config
}

func (c *Config) defaults() error {
	if c.Replay == nil || c.Tokens == nil {
		return errors.New("edge: Config needs Replay and Tokens")
	}
	if c.Node == "" {
		c.Node = "edge"
	}
	c.Region = ring.RegionOr(c.Region)
	if err := ring.CheckRegion(c.Region); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	setDefault(&c.HeartbeatInterval, 30*time.Second)
	setDefault(&c.IdleTimeout, 3*c.HeartbeatInterval)
	setDefault(&c.QueueBytes, 1<<20)
	setDefault(&c.StallTimeout, 2*time.Second)
	setDefault(&c.WriteTimeout, 10*time.Second)
	setDefault(&c.MaxFrameBytes, 64<<10)
	setDefault(&c.PolicyStrikes, 16)
	if c.RequestRate == 0 {
		c.RequestRate = 100
	}
	setDefault(&c.RequestBurst, 200)
	if c.ConnectRate == 0 {
		c.ConnectRate = 1000
	}
	setDefault(&c.ConnectBurst, 1000)
	if c.TeamConnectRate == 0 {
		c.TeamConnectRate = 200
	}
	setDefault(&c.TeamConnectBurst, 400)
	setDefault(&c.MaxReplay, 10_000)
	setDefault(&c.DrainSpread, 5*time.Second)
	setDefault(&c.JITObjects, 512)
	if c.SurgeLoads == 0 {
		c.SurgeLoads = 8
	}
	if c.SurgeWindow <= 0 {
		c.SurgeWindow = 10 * time.Second
	}
	setDefault(&c.RecentBytes, 4<<20)
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = 256 << 10
	}
	if c.RecentEvents == 0 {
		c.RecentEvents = 512
	}
	return nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Server is an edge node: an http.Handler serving /ws, /api/<method>, /healthz, /readyz, /probe and
// /metrics for the teams it holds.
type Server struct {
	cfg     Config
	log     *slog.Logger
	teams   *cache.Teams
	metrics *metrics
	mux     *http.ServeMux
	ops     *http.ServeMux // the operator's endpoints (OpsHandler)

	hubs      sync.Map // team ID → *hub
	draining  atomic.Bool
	conns     tracker // WebSocket handlers under way
	sessions  atomic.Int64
	shutMu    sync.Mutex
	shutDone  chan struct{} // closed when the first Shutdown's drain is over; nil before one
	cluster   *cluster      // nil when standalone
	admit     *admission    // nil without a memory budget
	connects  *bucket.Pacer
	apiQuotas *apiQuotas // per user, for /api
	cursors   *cursors   // seals paging cursors
	surge     *surge
	teamConn  sync.Map // team ID → *bucket.Pacer, dropped when the team unloads
	fills     singleflight.Group
	bg        sync.WaitGroup
	writers   writerPool // the sessions' writers (writers.go), from Start to Shutdown
	bgStop    context.CancelFunc
}

// New validates cfg and builds the node. It starts nothing; Start does.
func New(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, admit: newAdmission(cfg.Admission),
		connects:  bucket.NewPacer(cfg.ConnectRate, cfg.ConnectBurst),
		apiQuotas: newAPIQuotas(cfg.RequestRate, cfg.RequestBurst),
		surge:     &surge{loads: cfg.SurgeLoads, window: cfg.SurgeWindow}}
	s.metrics = newMetrics(cfg.Registry, s)
	ckeys := cfg.CursorKeys
	if d, ok := cfg.Tokens.(interface{ Derived(string) [][]byte }); ok && ckeys == nil {
		ckeys = d.Derived(cursorLabel)
	}
	if ckeys == nil { // cursors good on this node only, until it restarts
		k := make([]byte, 32)
		rand.Read(k)
		ckeys = [][]byte{k}
	}
	var err error
	if s.cursors, err = newCursors(ckeys); err != nil {
		return nil, fmt.Errorf("edge: Config.CursorKeys: %w", err)
	}
	userAdmit := cfg.Cache.AdmitLoad
	cfg.Cache.AdmitLoad = func(team string) error {
		if s.admit != nil {
			if err := s.admitLoad(team); err != nil {
				return err
			}
		}
		if userAdmit != nil {
			if err := userAdmit(team); err != nil {
				return err
			}
		}
		s.surge.loadStarted(time.Now())
		return nil
	}
	if cfg.Index.FuzzyGate == nil { // one typo-fallback build at a time on this node
		cfg.Index.FuzzyGate = make(chan struct{}, 1)
	}
	if cfg.Index.BuildGate == nil { // and two prefix builds
		cfg.Index.BuildGate = make(chan struct{}, 2)
	}
	userFuzzy := cfg.Index.AdmitFuzzy
	cfg.Index.AdmitFuzzy = func() bool { return s.admitFuzzy() && (userFuzzy == nil || userFuzzy()) }
	user := cfg.Cache.Hooks
	cfg.Cache.Hooks = cache.Hooks{
		OnEvent: func(t *cache.Team, ev *origin.Event, ch cache.Change) {
			s.onEvent(t, ev)
			if user.OnEvent != nil {
				user.OnEvent(t, ev, ch)
			}
		},
		OnLoad: func(team string, took time.Duration, err error) {
			s.metrics.loaded(took, err)
			if user.OnLoad != nil {
				user.OnLoad(team, took, err)
			}
		},
		OnReload: func(t *cache.Team) {
			s.onReload(t)
			if user.OnReload != nil {
				user.OnReload(t)
			}
		},
		OnUnload: func(t *cache.Team) {
			s.teamConn.Delete(t.ID())
			if h, ok := s.hubs.LoadAndDelete(t.ID()); ok {
				h.(*hub).mu.Lock()
				h.(*hub).dead = true
				h.(*hub).mu.Unlock()
			}
			if user.OnUnload != nil {
				user.OnUnload(t)
			}
		},
	}
	if cfg.Cache.Logger == nil {
		cfg.Cache.Logger = cfg.Logger
	}
	userBuild := cfg.Index.OnBuild
	cfg.Index.OnBuild = func(team string, fuzzy bool, took time.Duration) {
		s.metrics.indexBuilt(fuzzy, took)
		if userBuild != nil {
			userBuild(team, fuzzy, took)
		}
	}
	if cfg.Index.Logger == nil {
		cfg.Index.Logger = cfg.Logger
	}
	cfg.Cache.Follow = index.Follow(cfg.Index)
	teams, err := cache.New(cfg.Cache)
	if err != nil {
		return nil, err
	}
	s.teams = teams
	if cfg.Cluster != nil {
		if s.cluster, err = newCluster(s, *cfg.Cluster); err != nil {
			return nil, err
		}
	}
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
	var allowProbe func(string) bool
	if s.cluster != nil && s.cluster.routes != nil {
		allowProbe = s.cluster.probeSigned
	}
	s.mux.Handle("GET "+probe.Path, probe.Handler(s.probeAnswer, allowProbe))
	s.ops = http.NewServeMux()
	s.ops.Handle("GET /metrics", s.metrics.handler())
	s.ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.ops.HandleFunc("GET /readyz", s.handleReady)
	s.ops.HandleFunc("GET /debug/teams", s.handleTeams)
	s.ops.HandleFunc("POST /drain", s.handleDrain)
	return s, nil
}

// OpsHandler serves the operator's endpoints (serve.Process.ServeOps, never the client port):
// /metrics, /healthz, /readyz saying why, /debug/teams (the loaded teams, busiest first) and
// POST /drain (ops.go).
func (s *Server) OpsHandler() http.Handler { return s.ops }

// Start starts the team set (its janitor and pre-warm loads) and, in a cluster, the node's
// announcements and ring watch.
func (s *Server) Start() error {
	s.teams.Start()
	s.writers.start(s.cfg.Writers)
	if s.admit != nil {
		s.sample()
		ctx, cancel := context.WithCancel(context.Background())
		s.bgStop = cancel
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.runAdmission(ctx)
		}()
	}
	if s.cluster != nil {
		return s.cluster.start(s)
	}
	return nil
}

// Teams is the node's team set.
func (s *Server) Teams() *cache.Teams { return s.teams }

// Sessions is the number of open WebSocket sessions.
func (s *Server) Sessions() int64 { return s.sessions.Load() }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// probeAnswer is what this edge tells a proxy that asks it directly because it cannot hear its
// announcements (NATS down; internal/ring/silent.go): the announcement it would send now. Not
// in a ring (standalone), it says so and no proxy keeps it. /readyz is not the probe: this
// edge still serves its warm teams while it answers 503 there (over its memory budget).
func (s *Server) probeAnswer() (ring.Announcement, bool) {
	if s.cluster == nil {
		return ring.Announcement{}, false
	}
	return s.cluster.announcement(s), true
}

// teamPacer is team's connection pacer.
func (s *Server) teamPacer(team string) *bucket.Pacer {
	if p, ok := s.teamConn.Load(team); ok {
		return p.(*bucket.Pacer)
	}
	p, _ := s.teamConn.LoadOrStore(team, bucket.NewPacer(s.cfg.TeamConnectRate, s.cfg.TeamConnectBurst))
	return p.(*bucket.Pacer)
}

// rateLimited answers a refused handshake: 429 with when to come back.
func (s *Server) rateLimited(w http.ResponseWriter, what string, after time.Duration) {
	s.metrics.shed.WithLabelValues(what).Inc()
	writeError(w, http.StatusTooManyRequests, &protocol.Error{Code: protocol.CodeRateLimited, Message: "too many new connections (" + what + ")",
		RetryAfterMS: max(after, time.Millisecond).Milliseconds()})
}

// jitter returns a random duration in [d/2, d), so that clients told to come back do not all
// come back at once.
func (s *Server) jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + mrand.N(d/2)
}

// writeError answers a plain HTTP request with the protocol's error body.
func writeError(w http.ResponseWriter, status int, e *protocol.Error) {
	protocol.WriteError(w, status, e)
}

// authenticate reads the caller's claims; on failure it has answered 401.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, find func(*http.Request) (string, bool)) (token.Claims, bool) {
	tok, ok := find(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, errorf(protocol.CodeInvalidAuth, "%s", token.Missing(r)))
		return token.Claims{}, false
	}
	c, err := s.cfg.Tokens.Verify(tok)
	if err != nil {
		writeError(w, http.StatusUnauthorized, errorf(protocol.CodeInvalidAuth, "%v", err))
		return token.Claims{}, false
	}
	return c, true
}

// member reports whether the user claims names may use the team st holds: the team has the
// user and the origin has not deactivated it. A valid token outlives a deactivation (tokens
// are not revoked), so this is where a deactivated user is turned away. It has answered the
// client when false.
func (s *Server) member(w http.ResponseWriter, st *cache.Store, c token.Claims) bool {
	u, ok := st.User(c.User)
	switch {
	case !ok:
		writeError(w, http.StatusUnauthorized, errorf(protocol.CodeInvalidAuth, "user %s is not in team %s", c.User, c.Team))
		return false
	case u.Deleted:
		writeError(w, http.StatusForbidden, errorf(protocol.CodeAccountInactive, "user %s is deactivated", c.User))
		return false
	}
	return true
}

// teamError turns a failed team load into an HTTP status and protocol error.
func (s *Server) teamError(err error) (int, *protocol.Error) {
	switch {
	case errors.Is(err, origin.ErrNotFound):
		return http.StatusNotFound, errorf(protocol.CodeNotFound, "team not found")
	case errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable, s.overloadedError("the node is over its memory budget and loads no new team")
	case errors.Is(err, cache.ErrNoFeed):
		// NATS is down: warm teams are served, cold ones wait for it (cache.ErrNoFeed).
		return http.StatusServiceUnavailable, s.overloadedError("this node cannot follow a new team's events now (NATS unreachable); teams already loaded are served")
	case errors.Is(err, cache.ErrClosed):
		return http.StatusServiceUnavailable, &protocol.Error{Code: protocol.CodeOverloaded, Message: "node is shutting down",
			RetryAfterMS: s.jitter(s.cfg.DrainSpread).Milliseconds()}
	case origin.IsFailure(err), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, &protocol.Error{Code: protocol.CodeOriginUnavailable, Message: "the team cannot be loaded now",
			RetryAfterMS: s.jitter(2 * time.Second).Milliseconds()}
	}
	return http.StatusBadGateway, &protocol.Error{Code: protocol.CodeOriginUnavailable, Message: err.Error(),
		RetryAfterMS: s.jitter(2 * time.Second).Milliseconds()}
}

func (s *Server) hubFor(team string, st *cache.Store) *hub {
	if h, ok := s.hubs.Load(team); ok {
		return h.(*hub)
	}
	nh := newHub(team, st.Seq())
	nh.writers = &s.writers
	nh.limit, nh.limitBytes, nh.maxEvent = s.cfg.RecentEvents, s.cfg.RecentBytes, s.cfg.MaxEventBytes
	h, _ := s.hubs.LoadOrStore(team, nh)
	return h.(*hub)
}

// onEvent fans out one applied event; it runs on the team's feed goroutine.
func (s *Server) onEvent(t *cache.Team, ev *origin.Event) {
	s.metrics.eventsIn.Inc()
	// Every event goes through the team's hub, made here when no session has made it yet: a hub
	// first made by a session from a store seq read just before this event was applied would
	// otherwise start behind an event that was never fanned out, and its sessions would miss it.
	st := t.Store()
	s.hubFor(t.ID(), st).fanout(st, ev, s.cfg.Annotate, s.metrics)
}

// onReload: the team lost events no stream could give back, so its sessions may have missed
// some. They are told to reconnect; their resume will say whether they must boot again.
func (s *Server) onReload(t *cache.Team) {
	h, ok := s.hubs.Load(t.ID())
	if !ok {
		return
	}
	// The new store starts at its snapshot's seq; the events up to it were never fanned out.
	// Sessions from now on start after it (a resume replays up to it from the stream, or says
	// resumed:false when the stream lost them); otherwise a new session's hello would claim a
	// seq long past and a resume would skip what the reload absorbed.
	h.(*hub).advance(t.Store().Seq())
	for _, ss := range h.(*hub).snapshot() {
		ss.goodbye(endReload, s.jitter(time.Second))
	}
}

func newSessionID() string {
	var b [8]byte
	rand.Read(b[:])
	return "s_" + hex.EncodeToString(b[:])
}

// Shutdown drains the node: it stops accepting, tells every session goodbye draining with a
// jittered reconnect_after_ms, waits for the sessions to close (or ctx), then stops the team
// set. The first call drains, bounded by its ctx, and returns the drain's outcome; a call
// during that drain (a SIGTERM while POST /drain runs) waits for it within its own ctx, and
// a call after it returns nil at once: the drain is over, and its caller was told how it went.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutMu.Lock()
	done, first := s.shutDone, s.shutDone == nil
	if first {
		done = make(chan struct{})
		s.shutDone = done
	}
	s.shutMu.Unlock()
	if !first {
		select {
		case <-done: // over, whatever ctx says
			return nil
		default:
		}
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("edge: waiting for the drain under way: %w", ctx.Err())
		}
	}
	err := s.drainAndStop(ctx)
	close(done)
	return err
}

// drainAndStop is the first Shutdown's work.
func (s *Server) drainAndStop(ctx context.Context) error {
	var err error
	s.draining.Store(true)
	// In a cluster the sessions move to their teams' next owners, pre-warmed; a lone
	// node (or the last of a ring) can only tell them to come back later.
	if s.cluster == nil || !s.cluster.drain(ctx, s, s.cfg.DrainSpread) {
		s.hubs.Range(func(_, h any) bool {
			for _, ss := range h.(*hub).snapshot() {
				ss.goodbye(endDraining, s.jitter(s.cfg.DrainSpread))
			}
			return true
		})
	}
	if werr := s.conns.wait(ctx); werr != nil {
		err = fmt.Errorf("edge: drain: %w", werr)
	}
	if s.cluster != nil {
		s.cluster.stop()
	}
	s.writers.stop() // a session left over (drain timed out) writes on goroutines of its own
	if s.bgStop != nil {
		s.bgStop()
		s.bg.Wait()
	}
	if terr := s.teams.Shutdown(ctx); err == nil {
		err = terr
	}
	return err
}
