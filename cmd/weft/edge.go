package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/internal/tlsfiles"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/pubsub"
)

// edgeOpts are the flags of an edge node, shared by `weft edge` and `weft dev`.
type edgeOpts struct {
	addr        string
	node        string
	originURL   string
	originToken string
	secret      string
	secretFile  string
	grace       time.Duration
	prewarm     string
	pageLimit   int
	queueBytes  int
	heartbeat   time.Duration
	drain       time.Duration
	typos       bool
	affinityMax int
	recent      int
	jitObjects  int
	annotate    string
	standalone  bool
	advertise   string
	announce    time.Duration
	moveSpread  time.Duration
	reqRate     float64
	reqBurst    int
	memBudget   string
	recentEvs   int
	recentBytes int
	maxEvent    int
	writers     int
	surgeLoads  int
	connRate    float64
	connBurst   int
	teamRate    float64
	teamBurst   int
	originFails int
	originOpen  time.Duration
	originCall  time.Duration
	region      string // "": the default region (a flag of `weft edge` only: `weft dev` sets it per edge)
	// TLS, flags of `weft edge` only (weft dev stays plain on loopback): what the edge serves
	// to clients and proxies, how it reaches its peers' probes, and the origin's CA.
	tls                             tlsfiles.ServerFlags
	peerTLS                         tlsfiles.ClientFlags
	originCA, originCert, originKey string
	loaded                          edgeTLS // what loadTLS read of them
}

// edgeTLS is the edge's TLS, read from the files its flags name.
type edgeTLS struct {
	server, peers *tls.Config
	origin        *tls.Config // nil: Go's defaults
	metrics       []prometheus.Collector
}

// loadTLS reads the files the TLS flags name, before anything connects, so that a bad one is
// an error at start naming its flag.
func (o *edgeOpts) loadTLS(log *slog.Logger) error {
	var err error
	var m1, m2 []prometheus.Collector
	if o.loaded.server, m1, err = o.tls.Config(log); err != nil {
		return err
	}
	if o.loaded.peers, m2, err = o.peerTLS.Config(log); err != nil {
		return err
	}
	o.loaded.metrics = append(m1, m2...)
	if o.originCA == "" && o.originCert == "" {
		return nil
	}
	var pool *x509.CertPool // nil: the system's roots
	if o.originCA != "" {
		if pool, err = tlsfiles.ReadPool(o.originCA); err != nil {
			return fmt.Errorf("--origin-ca: %w", err)
		}
	}
	var pair *tlsfiles.Pair
	if o.originCert != "" {
		if pair, err = tlsfiles.LoadPair("origin", o.originCert, o.originKey, log); err != nil {
			return fmt.Errorf("--origin-cert, --origin-key: %w", err)
		}
		o.loaded.metrics = append(o.loaded.metrics, pair.Collectors()...)
	}
	o.loaded.origin = tlsfiles.ClientConfig(pool, "", pair)
	return nil
}

// minMemoryBudget is the least --memory-budget an edge takes: below it the runtime and one
// team's indexes already pass 70%, and admission would refuse everything from the start.
const minMemoryBudget = 64 << 20

// check validates the flags that need no file or connection, each error naming its flag, so
// that a bad one fails before the edge reaches NATS.
func (o *edgeOpts) check() error {
	if err := cli.CheckListenAddr("--addr", o.addr); err != nil {
		return err
	}
	if !o.standalone {
		if o.advertise != "" {
			if err := cli.CheckAdvertised("--advertise", o.advertise); err != nil {
				return err
			}
		} else if cli.IsWildcard(o.addr) {
			return fmt.Errorf("--addr %s listens on every interface and the edge announces it to proxies and peers, "+
				"which cannot dial it: pass --advertise with the host:port they reach this edge on", o.addr)
		}
	}
	budget, err := cli.ParseBytes(o.memBudget)
	if err != nil {
		return fmt.Errorf("--memory-budget: %w", err)
	}
	if budget != 0 && budget < minMemoryBudget {
		return fmt.Errorf("--memory-budget: %s is below the %d MiB an edge needs to run at all (empty: no admission control)",
			o.memBudget, minMemoryBudget>>20)
	}
	u, err := url.Parse(o.originURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--origin: %q is not an http(s)://host[:port] URL", o.originURL)
	}
	if (o.originCA != "" || o.originCert != "") && !strings.EqualFold(u.Scheme, "https") {
		return fmt.Errorf("--origin-ca and --origin-cert need an https:// --origin")
	}
	if (o.originCert == "") != (o.originKey == "") {
		return fmt.Errorf("--origin-cert, --origin-key: give both or neither")
	}
	if err := o.tls.Check(); err != nil {
		return err
	}
	if o.tls.Enabled() && !o.standalone && !o.peerTLS.On {
		// Its peers serve TLS as it does: plain probes of them would fail, and only when a NATS
		// outage makes probes matter.
		return errors.New("--tls-cert without --peer-tls: the edge probes its peers (which serve TLS as it does) during a NATS outage; pass --peer-tls, with --peer-ca and the rest as proxies pass --edge-*")
	}
	return o.peerTLS.Check()
}

func (o *edgeOpts) flags(fs *flag.FlagSet, addr string) {
	fs.StringVar(&o.addr, "addr", addr, "address the edge listens on")
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "edge-1"
	}
	fs.StringVar(&o.node, "node", host, "node name, shown in hello frames and unique in the ring (two edges on one host need their own)")
	fs.StringVar(&o.originToken, "origin-token", "", "service token sent to the origin")
	fs.DurationVar(&o.grace, "grace", 5*time.Minute, "how long a team without sessions stays loaded")
	fs.StringVar(&o.prewarm, "prewarm", "", "comma-separated team IDs to load at start and keep loaded")
	fs.IntVar(&o.pageLimit, "page-limit", 5000, "page size asked of the origin when loading a team")
	fs.IntVar(&o.queueBytes, "queue-bytes", 1<<20, "outbound queue bound per connection; a client over it whose writes stall for 2s, or over 4× it, is a slow consumer")
	fs.DurationVar(&o.heartbeat, "heartbeat", 30*time.Second, "heartbeat interval announced to clients; silent connections close after 3×")
	fs.DurationVar(&o.drain, "drain", 5*time.Second, "window over which draining clients are told to reconnect")
	fs.BoolVar(&o.typos, "autocomplete-typos", true, "build each team's typo-tolerant autocomplete fallback (bleve) in the background")
	fs.IntVar(&o.affinityMax, "autocomplete-affinity-max", 1000, "channels bigger than this do not make their members rank as close to each other")
	fs.IntVar(&o.recent, "autocomplete-recent", 2048, "how many recent message senders and channels rank as recently active")
	fs.IntVar(&o.jitObjects, "jit-objects", 512, "objects remembered per connection as already sent, so events do not attach them again")
	fs.StringVar(&o.annotate, "annotate", "jit", "what events carry: jit (objects the client lacks), never or always (baselines for measuring)")
	fs.BoolVar(&o.standalone, "standalone", false, "do not join the ring of edges (no announcements, no ownership checks): one edge without a proxy")
	fs.StringVar(&o.advertise, "advertise", "", "host:port proxies reach this edge on; empty = the address it listens on")
	fs.DurationVar(&o.announce, "announce", time.Second, "how often the edge announces itself on NATS; proxies and edges drop an edge silent for 5 intervals (at least 2s)")
	fs.Float64Var(&o.connRate, "connect-rate", 1000, "new connections per second the edge takes; past it 429 with a spread Retry-After; negative: no limit")
	fs.IntVar(&o.connBurst, "connect-burst", 1000, "new connections the edge takes at once above its rate")
	fs.Float64Var(&o.teamRate, "team-connect-rate", 200, "new connections per second of one team; negative: no limit")
	fs.IntVar(&o.teamBurst, "team-connect-burst", 400, "new connections of one team at once above its rate")
	fs.IntVar(&o.originFails, "origin-failures", 5, "origin failures in a row that open its circuit breaker (calls then fail fast with origin_unavailable)")
	fs.DurationVar(&o.originOpen, "origin-open-for", 5*time.Second, "how long the open breaker fails fast before it probes the origin")
	fs.DurationVar(&o.originCall, "origin-timeout", 10*time.Second, "timeout of one origin call (one page)")
	fs.IntVar(&o.surgeLoads, "surge-loads", 8, "team loads within 10s that make a surge (this edge taking over another's teams): typo-fallback index builds wait while it lasts; negative: never")
	fs.IntVar(&o.recentEvs, "recent-events", 512, "latest events kept per team so that resumes replay from memory, not the stream; negative: none")
	fs.IntVar(&o.writers, "writers", 0, "goroutines writing the sessions' frames, each write all of a session's queued frames at once; 0: one per CPU (GOMAXPROCS); negative: a goroutine per session while it has frames queued (to measure against)")
	fs.IntVar(&o.maxEvent, "max-event-bytes", 256<<10, "bound on an event's frame: an event over it is sent cut (a message's text shortened, an object replaced by its ID, marked cut: too_large) and counted in weft_edge_events_cut_total; negative: no bound")
	fs.IntVar(&o.recentBytes, "recent-bytes", 4<<20, "bound on the bytes of those events per team (their size on the bus); the latest is always kept")
	fs.StringVar(&o.memBudget, "memory-budget", "", "memory the edge may use, e.g. 2GiB: sets GOMEMLIMIT; past 70% it refuses new connections and team loads, past 85% it unloads idle teams; empty: no admission control")
	fs.Float64Var(&o.reqRate, "request-rate", 100, "requests per second each connection may make (a token bucket); past it rate_limited and reads pause; negative: no limit")
	fs.IntVar(&o.reqBurst, "request-burst", 200, "requests a connection may make at once above its rate")
	fs.DurationVar(&o.moveSpread, "move-spread", 10*time.Second, "window over which sessions of teams the ring moved to another edge are told to reconnect")
}

// server builds an edge node on bus, reachable by proxies at addr (unless --advertise says
// otherwise). It does not listen.
func (o *edgeOpts) server(bus *pubsub.Bus, log *slog.Logger, addr string, reg *prometheus.Registry) (*edge.Server, error) {
	keys, err := token.Load(o.secret, o.secretFile)
	if err != nil {
		return nil, err
	}

	mode, err := edge.ParseAnnotateMode(o.annotate)
	if err != nil {
		return nil, err
	}
	breaker := origin.NewBreaker(origin.BreakerConfig{Failures: o.originFails, OpenFor: o.originOpen, Logger: log.With("node", o.node)})
	client, err := origin.NewClient(origin.ClientConfig{BaseURL: o.originURL, Token: o.originToken, PageLimit: o.pageLimit,
		Guard: breaker, Timeout: o.originCall, TLS: o.loaded.origin})
	if err != nil {
		return nil, err
	}
	var prewarm []string
	for _, id := range strings.Split(o.prewarm, ",") {
		if id = strings.TrimSpace(id); id != "" {
			prewarm = append(prewarm, id)
		}
	}
	budget, err := cli.ParseBytes(o.memBudget)
	if err != nil {
		return nil, fmt.Errorf("--memory-budget: %w", err)
	}
	if budget > 0 {
		// The collector works harder as the heap nears the budget, before admission has to
		// refuse anything; admission then keeps the heap from reaching it.
		debug.SetMemoryLimit(budget)
	}
	var cluster *edge.ClusterConfig
	if !o.standalone {
		if o.advertise != "" {
			addr = o.advertise
		}
		cluster = &edge.ClusterConfig{Peers: bus, Addr: addr, Interval: o.announce, MoveSpread: o.moveSpread, PeerTLS: o.loaded.peers}
	}
	return edge.New(edge.Config{
		Registry:          reg,
		Cluster:           cluster,
		Cache:             cache.Config{Origin: client, Feed: bus, Logger: log, Grace: o.grace, Prewarm: prewarm},
		Replay:            bus,
		Tokens:            keys,
		Node:              o.node,
		Region:            o.region,
		Logger:            log.With("node", o.node),
		QueueBytes:        o.queueBytes,
		HeartbeatInterval: o.heartbeat,
		DrainSpread:       o.drain,
		Index:             index.Config{NoFuzzy: !o.typos, AffinityMaxMembers: o.affinityMax, Recent: o.recent},
		JITObjects:        o.jitObjects,
		RequestRate:       o.reqRate,
		Admission:         edge.AdmissionConfig{Budget: budget},
		Breaker:           breaker,
		RecentEvents:      o.recentEvs,
		RecentBytes:       o.recentBytes,
		MaxEventBytes:     o.maxEvent,
		Writers:           o.writers,
		SurgeLoads:        o.surgeLoads,
		ConnectRate:       o.connRate,
		ConnectBurst:      o.connBurst,
		TeamConnectRate:   o.teamRate,
		TeamConnectBurst:  o.teamBurst,
		RequestBurst:      o.reqBurst,
		Annotate:          mode,
	})
}

// listen listens on addr and builds the edge that serves there (see server); the caller
// serves it (serveEdge). With --tls-cert (loadTLS) the listener serves TLS.
func (o *edgeOpts) listen(addr string, bus *pubsub.Bus, log *slog.Logger) (*edge.Server, net.Listener, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(o.loaded.metrics...)
	ln, err := tlsfiles.Listen(addr, o.loaded.server)
	if err != nil {
		return nil, nil, fmt.Errorf("--addr: %w", err)
	}
	srv, err := o.server(bus, log, ln.Addr().String(), reg)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return srv, ln, nil
}

// serveEdge runs srv on ln (with h in front, which hands srv what is its) until ctx ends, then drains it within the drain window plus a
// margin: the sessions are told goodbye (and moved, in a ring) before the listener closes.
func serveEdge(ctx context.Context, srv *edge.Server, h http.Handler, ln net.Listener, drain time.Duration, log *slog.Logger) error {
	if err := srv.Start(); err != nil {
		ln.Close()
		return err
	}
	return serve.Until(ctx, h, ln, drain+10*time.Second, func(sctx context.Context, hs *http.Server) error {
		log.Info("draining")
		err := srv.Shutdown(sctx) // goodbye to every session, wait for them
		if serr := hs.Shutdown(sctx); err == nil {
			err = serr
		}
		return err
	})
}

func runEdge(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weft.NewFlagSet("edge", "Run an edge node: the WebSocket and HTTP endpoints of docs/protocol.md over a per-team\n"+
		"cache loaded from the origin and kept current from NATS.")
	var o edgeOpts
	o.flags(fs, "127.0.0.1:8080")
	fs.StringVar(&o.originURL, "origin", "http://127.0.0.1:8081", "origin base URL")
	fs.StringVar(&o.secret, "token-secret", "", "token secret shared with the token issuer (or --token-secret-file: a command line is visible to every user of the host)")
	fs.StringVar(&o.secretFile, "token-secret-file", "", "file of token secrets, one a line: \"<key ID> <secret>\" or \"<secret>\"; the first signs, all verify (rolling a secret: docs/security.md)")
	fs.StringVar(&o.region, "region", ring.DefaultRegion, "this edge's region: announced, shown in hello and metrics; proxies of the region put it in their ring, others fall back to it")
	o.tls.Flags(fs, "clients and proxies")
	o.peerTLS.Flags(fs, "peer", "peer edges")
	fs.StringVar(&o.originCA, "origin-ca", "", "PEM CA certificates that sign an https:// --origin's certificate; empty: the system's roots")
	fs.StringVar(&o.originCert, "origin-cert", "", "PEM client certificate presented to an https:// --origin that asks for one (its --tls-client-ca), with --origin-key; read again when it changes")
	fs.StringVar(&o.originKey, "origin-key", "", "PEM private key of --origin-cert")
	var nats natsOpts
	nats.flags(fs, "NATS server or cluster URL(s) the origin publishes to, comma-separated seeds (required unless --embedded-nats)")
	embedded := fs.Bool("embedded-nats", false, "without --nats, run an embedded NATS server with JetStream on --nats-addr and create the events stream there: only for an edge whose origin publishes to that server (weft dev does this in one process)")
	var proc serve.Process
	proc.Flags(fs)
	log, err := weft.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if err := nats.embeddedEdge(*embedded); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	if err := o.loadTLS(log); err != nil {
		return err
	}
	if err := ring.CheckRegion(o.region); err != nil {
		return fmt.Errorf("--region: %w", err)
	}
	bus, _, closeBus, err := nats.connect(ctx, log, "weft-edge-"+o.node)
	if err != nil {
		return err
	}
	defer closeBus()
	if err := proc.Apply(ctx, log); err != nil {
		return err
	}
	srv, ln, err := o.listen(o.addr, bus, log)
	if err != nil {
		return err
	}
	ops, err := proc.ServeOps(ctx, srv.OpsHandler(), log)
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "weft edge %s: %s://%s (origin %s)\n", o.node, tlsfiles.Scheme(o.loaded.server, false), ln.Addr(), o.originURL)
	if ops != "" {
		fmt.Fprintf(stdout, "weft edge %s ops: http://%s\n", o.node, ops)
	}
	return serveEdge(ctx, srv, srv, ln, o.drain, log)
}
