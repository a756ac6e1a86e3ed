package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/proxy"
	"github.com/weft-edge/weft/pubsub"
)

// proxyOpts are the flags of a proxy, shared by `weft proxy` and `weft dev --edges N`.
type proxyOpts struct {
	addr                 string
	secret               string
	static               string
	downFor              time.Duration
	connRate, edgeRate   float64
	connBurst, edgeBurst int
	acceptRate           float64
	acceptBurst          int
	edgeLag              time.Duration
	edgeFloor            float64
}

func (o *proxyOpts) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8090", "address the proxy listens on")
	fs.StringVar(&o.secret, "token-secret", "", "token secret shared with the edges (required)")
	fs.StringVar(&o.static, "edges", "", "static edges, name=host:port comma-separated, for setups without discovery on NATS")
	fs.Float64Var(&o.connRate, "connect-rate", 2000, "WebSocket connections per second this proxy sets up; past it 429 with a spread Retry-After; negative: no limit")
	fs.IntVar(&o.connBurst, "connect-burst", 2000, "connections set up at once above the rate")
	fs.Float64Var(&o.acceptRate, "accept-rate", 1000, "new TCP connections accepted per second; the rest wait in the kernel's queue, so a reconnect herd does not take the open tunnels' CPU; negative: no pacing")
	fs.IntVar(&o.acceptBurst, "accept-burst", 100, "connections accepted at once above the accept rate")
	fs.Float64Var(&o.edgeRate, "edge-rate", 150, "new connections per second sent to any one edge: after an edge is lost, its clients reach the survivors at this pace; negative: no limit")
	fs.IntVar(&o.edgeBurst, "edge-burst", 20, "new connections sent to one edge at once above the rate")
	fs.DurationVar(&o.edgeLag, "edge-lag-target", 10*time.Millisecond, "the scheduling lag an edge may announce and still get more new connections; past it the pace to it halves at each of its announcements, down to --edge-rate-floor; negative (-1ms): always --edge-rate")
	fs.Float64Var(&o.edgeFloor, "edge-rate-floor", 0, "the least new connections per second sent to one edge however slow it says it is (0: a third of --edge-rate)")
	fs.DurationVar(&o.downFor, "down-for", 5*time.Second, "how long an edge that refused a connection stays out of the ring unless it restarts")
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

// server builds the proxy; watch may be nil when static edges are given.
func (o *proxyOpts) server(watch proxy.Watcher, log *slog.Logger) (*proxy.Server, error) {
	if o.secret == "" {
		return nil, errors.New("the token secret is not set: pass --token-secret or WEFT_TOKEN_SECRET")
	}
	keys, err := token.New([]byte(o.secret))
	if err != nil {
		return nil, err
	}
	static, err := parseStatic(o.static)
	if err != nil {
		return nil, err
	}
	if watch == nil && len(static) == 0 {
		return nil, errors.New("the proxy needs edges: pass --nats (edges announce themselves there) or --edges")
	}
	return proxy.New(proxy.Config{Tokens: keys, Watch: watch, Static: static, DownFor: o.downFor, Logger: log.With("node", "proxy"),
		ConnectRate: o.connRate, ConnectBurst: o.connBurst, EdgeRate: o.edgeRate, EdgeBurst: o.edgeBurst,
		EdgeLagTarget: o.edgeLag, EdgeRateFloor: o.edgeFloor,
		AcceptRate: o.acceptRate, AcceptBurst: o.acceptBurst})
}

// serveProxy runs srv on ln until ctx ends, then stops taking connections and closes the
// tunnels (their clients reconnect through another proxy).
func serveProxy(ctx context.Context, srv *proxy.Server, ln net.Listener, log *slog.Logger) error {
	if err := srv.Start(); err != nil {
		ln.Close()
		return err
	}
	ln = srv.PaceAccepts(ln)
	return serveUntil(ctx, srv, ln, 10*time.Second, func(sctx context.Context, hs *http.Server) error {
		log.Info("proxy stopping")
		err := hs.Shutdown(sctx)
		if serr := srv.Shutdown(sctx); err == nil {
			err = serr
		}
		return err
	})
}

func runProxy(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weft.NewFlagSet("proxy", "Run a proxy: it routes each client (WebSocket /ws and /api) to the edge that owns its\n"+
		"team, by consistent hashing over the edges that announce themselves on NATS (or --edges).")
	var o proxyOpts
	o.flags(fs)
	natsURL := fs.String("nats", "", "NATS server or cluster URL(s), comma-separated, where edges announce themselves")
	var proc processOpts
	proc.flags(fs)
	log, err := weft.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if err := proc.apply(ctx, log); err != nil {
		return err
	}
	var watch proxy.Watcher
	if *natsURL != "" {
		bus, err := pubsub.Connect(ctx, pubsub.Config{URL: *natsURL, Name: "weft-proxy", Logger: log})
		if err != nil {
			return err
		}
		defer bus.Close()
		watch = bus
	}
	srv, err := o.server(watch, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "weft proxy: http://%s (WebSocket ws://%s/ws)\n", ln.Addr(), ln.Addr())
	return serveProxy(ctx, srv, ln, log)
}
