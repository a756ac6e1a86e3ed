// Package proxycmd is the proxy's command line, written once for the two binaries that run it:
// `weft proxy` and cmd/weft-proxy, the proxy alone for proxy hosts and slim containers. It
// reaches NATS with the NATS client only (natsconn; see connectNATS), so that neither the
// embedded NATS server nor the edge's cache and search come with it.
package proxycmd

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/natsconn"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/internal/tlsfiles"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/proxy"
)

// Summary is the command's line in a list of commands.
const Summary = "run a proxy: routes each team's clients to the edge that owns it"

// Options are the flags of a proxy, shared by the proxy command and `weft dev --edges N`.
type Options struct {
	Addr                    string
	Secret                  string
	SecretFile              string
	Static                  string
	DownFor                 time.Duration
	ProbeTimeout            time.Duration
	ConnectRate, EdgeRate   float64
	ConnectBurst, EdgeBurst int
	AcceptRate              float64
	AcceptBurst             int
	EdgeLagTarget           time.Duration
	EdgeRateFloor           float64
	SpareConns              int
	ShutdownDelay           time.Duration
	Region                  string
	Fallback                string               // comma-separated regions, in order
	TLS                     tlsfiles.ServerFlags // clients' connections to the proxy
	EdgeTLS                 tlsfiles.ClientFlags // the proxy's connections to edges

	// What LoadTLS read of the files TLS and EdgeTLS name.
	serverTLS, edgeTLS *tls.Config
	tlsMetrics         []prometheus.Collector
}

// LoadTLS reads the files the TLS flags name, before anything connects, so that a bad one is
// an error at start naming its flag. Without it the proxy serves and dials plain TCP.
func (o *Options) LoadTLS(log *slog.Logger) error {
	var err error
	var m1, m2 []prometheus.Collector
	if o.serverTLS, m1, err = o.TLS.Config(log); err != nil {
		return err
	}
	if o.edgeTLS, m2, err = o.EdgeTLS.Config(log); err != nil {
		return err
	}
	o.tlsMetrics = append(m1, m2...)
	return nil
}

// Flags adds the proxy's flags to fs.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8090", "address the proxy listens on")
	fs.StringVar(&o.Secret, "token-secret", "", "token secret shared with the edges (or --token-secret-file: a command line is visible to every user of the host)")
	fs.StringVar(&o.SecretFile, "token-secret-file", "", "file of token secrets shared with the edges, one a line: \"<key ID> <secret>\" or \"<secret>\" (docs/security.md)")
	fs.StringVar(&o.Static, "edges", "", "static edges, name=host:port comma-separated, for setups without discovery on NATS")
	fs.Float64Var(&o.ConnectRate, "connect-rate", 2000, "WebSocket connections per second this proxy sets up; past it 429 with a spread Retry-After; negative: no limit")
	fs.IntVar(&o.ConnectBurst, "connect-burst", 2000, "connections set up at once above the rate")
	fs.Float64Var(&o.AcceptRate, "accept-rate", 1000, "new TCP connections accepted per second; the rest wait in the kernel's queue, so a reconnect herd does not take the open tunnels' CPU; negative: no pacing")
	fs.IntVar(&o.AcceptBurst, "accept-burst", 1000, "connections accepted at once above the accept rate: a second of it, so that a small herd (the clients of one lost edge) is not held to the rate")
	fs.Float64Var(&o.EdgeRate, "edge-rate", 150, "new connections per second sent to an edge that does not announce the rate it takes (an edge announces its --connect-rate, and the pace to it starts there): after an edge is lost, its clients reach the survivors at this pace; negative: no limit")
	fs.IntVar(&o.EdgeBurst, "edge-burst", 20, "new connections sent to one edge at once above the rate")
	fs.DurationVar(&o.EdgeLagTarget, "edge-lag-target", 10*time.Millisecond, "the scheduling lag an edge may announce and still get more new connections; past it the pace to it halves at each of its announcements, down to --edge-rate-floor; negative (-1ms): always --edge-rate")
	fs.IntVar(&o.SpareConns, "spare-conns", 4, "TCP connections to each edge in use kept dialed ahead of need, so a WebSocket setup does not wait for a connect; negative: none")
	fs.Float64Var(&o.EdgeRateFloor, "edge-rate-floor", 0, "the least new connections per second sent to one edge however slow it says it is (0: a third of --edge-rate)")
	fs.DurationVar(&o.DownFor, "down-for", 5*time.Second, "how long an edge that refused a connection stays out of the ring unless it restarts")
	fs.StringVar(&o.Region, "region", ring.DefaultRegion, "this proxy's region, its clients': its ring holds the edges that announce this region")
	fs.StringVar(&o.Fallback, "fallback-regions", "", "regions to route to, in order, while no edge serves in --region (comma-separated); their edges send the clients home when it serves again")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long the proxy says it is not ready (/readyz 503) while it still serves, before it stops taking connections and closes its tunnels: the time a load balancer needs to stop sending clients here (Kubernetes: 5s); 0: stop at once")
	o.TLS.Flags(fs, "clients")
	o.EdgeTLS.Flags(fs, "edge", "edges")
	fs.DurationVar(&o.ProbeTimeout, "probe-timeout", time.Second, "bound of one direct probe (GET /probe) of an edge whose announcements are overdue; an edge that answers stays in the ring through a NATS outage; negative (-1s): no probes, an edge not heard for its TTL leaves")
}

// regions reads --region and --fallback-regions.
func (o *Options) regions() (string, []string, error) {
	region, fallback := ring.RegionOr(o.Region), splitList(o.Fallback)
	if err := proxy.CheckRegions(region, fallback); err != nil {
		return "", nil, fmt.Errorf("--region, --fallback-regions: %w", err)
	}
	return region, fallback, nil
}

// splitList is the names of a comma-separated list, trimmed, without empty ones.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseStatic reads --edges.
func parseStatic(s string) ([]ring.Announcement, error) {
	var out []ring.Announcement
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--edges: %q is not name=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--edges: %q: %w", part, err)
		}
		out = append(out, ring.Announcement{Node: name, Addr: addr})
	}
	return out, nil
}

// Check validates the flags that need no file or connection, so that a bad one fails before
// the proxy reaches NATS.
func (o *Options) Check() error {
	if _, _, err := o.regions(); err != nil {
		return err
	}
	if err := cli.CheckListenAddr("--addr", o.Addr); err != nil {
		return err
	}
	if o.ShutdownDelay < 0 {
		return fmt.Errorf("--shutdown-delay: want 0 or more, got %s", o.ShutdownDelay)
	}
	if _, err := parseStatic(o.Static); err != nil {
		return err
	}
	if err := o.TLS.Check(); err != nil {
		return err
	}
	return o.EdgeTLS.Check()
}

// Server builds the proxy; watch may be nil when static edges are given. Its /metrics shows
// metrics too, those of its NATS connection (natsconn.Metrics). The TLS its clients' listener
// serves, if any (--tls-cert, read by LoadTLS), is returned for the listener.
func (o *Options) Server(watch proxy.Watcher, log *slog.Logger, metrics ...prometheus.Collector) (*proxy.Server, *tls.Config, error) {
	keys, err := token.Load(o.Secret, o.SecretFile)
	if err != nil {
		return nil, nil, err
	}
	static, err := parseStatic(o.Static)
	if err != nil {
		return nil, nil, err
	}
	region, fallback, err := o.regions()
	if err != nil {
		return nil, nil, err
	}
	if watch == nil && len(static) == 0 {
		return nil, nil, errors.New("the proxy needs edges: pass --nats (edges announce themselves there) or --edges")
	}
	metrics = append(metrics, o.tlsMetrics...)
	reg := prometheus.NewRegistry()
	for _, c := range metrics {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	srv, err := proxy.New(proxy.Config{EdgeTLS: o.edgeTLS, ServesTLS: o.serverTLS != nil, Registry: reg, Tokens: keys, Watch: watch, Static: static, DownFor: o.DownFor, Logger: log.With("node", "proxy"),
		ConnectRate: o.ConnectRate, ConnectBurst: o.ConnectBurst, EdgeRate: o.EdgeRate, EdgeBurst: o.EdgeBurst,
		EdgeLagTarget: o.EdgeLagTarget, EdgeRateFloor: o.EdgeRateFloor, SpareConns: o.SpareConns,
		AcceptRate: o.AcceptRate, AcceptBurst: o.AcceptBurst, ProbeTimeout: o.ProbeTimeout, Region: region, Fallback: fallback})
	return srv, o.serverTLS, err
}

// Serve runs srv on ln until ctx ends, then (after delay, not ready but serving: see
// proxy.Server.Leave) stops taking connections and closes the tunnels (their clients
// reconnect through another proxy).
func Serve(ctx context.Context, srv *proxy.Server, ln net.Listener, delay time.Duration, log *slog.Logger) error {
	return ServeHandler(ctx, srv, srv, ln, delay, log)
}

// ServeHandler is Serve with h in front of srv (h hands srv what is its): weft dev puts its
// page there.
func ServeHandler(ctx context.Context, srv *proxy.Server, h http.Handler, ln net.Listener, delay time.Duration, log *slog.Logger) error {
	if err := srv.Start(); err != nil {
		ln.Close()
		return err
	}
	ln = srv.Upgrades(srv.PaceAccepts(ln))
	return serve.Until(ctx, h, ln, 10*time.Second+delay, func(sctx context.Context, hs *http.Server) error {
		if delay > 0 {
			log.Info("proxy leaving: not ready, still serving", "for", delay)
			srv.Leave()
			t := time.NewTimer(delay)
			<-t.C
		}
		log.Info("proxy stopping")
		err := hs.Shutdown(sctx)
		if serr := srv.Shutdown(sctx); err == nil {
			err = serr
		}
		return err
	})
}

// Run is the proxy command of prog: command is its name there ("proxy" in weft), or "" when
// the program is the proxy alone (weft-proxy). It serves until ctx ends.
func Run(ctx context.Context, prog cli.Program, command string, args []string, stdout io.Writer) error {
	fs := prog.NewFlagSet(command, "Run a proxy: it routes each client (WebSocket /ws and /api) to the edge that owns its\n"+
		"team, by consistent hashing over the edges that announce themselves on NATS (or --edges).")
	var o Options
	o.Flags(fs)
	var conn natsconn.Options
	conn.Flags(fs, "NATS server or cluster URL(s), comma-separated seeds, where edges announce themselves")
	var proc serve.Process
	proc.Flags(fs)
	log, err := prog.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if err := conn.Validate(); err != nil {
		return err
	}
	if err := o.Check(); err != nil {
		return err
	}
	if err := o.LoadTLS(log); err != nil {
		return err
	}
	if err := proc.Apply(ctx, log); err != nil {
		return err
	}
	var (
		watch   proxy.Watcher
		metrics []prometheus.Collector
	)
	if conn.URLs != "" {
		m := natsconn.NewMetrics()
		nc, err := connectNATS(ctx, conn, log, m)
		if err != nil {
			return err
		}
		// Closed after Serve has returned, when the proxy has stopped watching.
		defer nc.Close()
		watch, metrics = ring.Announcements{Conn: nc, Logger: log}, append(metrics, m)
	}
	srv, serverTLS, err := o.Server(watch, log, metrics...)
	if err != nil {
		return err
	}
	ln, err := tlsfiles.Listen(o.Addr, serverTLS)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	ops, err := proc.ServeOps(ctx, srv.OpsHandler(), log)
	if err != nil {
		ln.Close()
		return err
	}
	name := strings.TrimSpace(prog.Name + " " + command)
	fmt.Fprintf(stdout, "%s: %s://%s (WebSocket %s://%s/ws)\n", name, tlsfiles.Scheme(serverTLS, false), ln.Addr(),
		tlsfiles.Scheme(serverTLS, true), ln.Addr())
	if ops != "" {
		fmt.Fprintf(stdout, "%s ops: http://%s\n", name, ops)
	}
	return Serve(ctx, srv, ln, o.ShutdownDelay, log)
}
