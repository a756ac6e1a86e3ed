package main

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
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/internal/tlsfiles"
	"github.com/weft-edge/weft/internal/version"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

// originOpts are the flags of the reference origin, shared by `weft origin` and `weft dev`.
type originOpts struct {
	addr  string
	size  string
	seed  int64
	token string
	rate  float64
	// wrap, when set, wraps the origin's handler (weft origin counts its requests with it).
	wrap func(http.Handler) http.Handler
	// tls, when set, is the TLS the origin's listener serves (weft origin's --tls-cert).
	tls *tls.Config
}

func (o *originOpts) flags(fs *flag.FlagSet, addrFlag string, rate float64) {
	fs.StringVar(&o.addr, addrFlag, "127.0.0.1:8081", "address the reference origin listens on")
	fs.StringVar(&o.size, "size", "small", "world size: "+fmt.Sprint(reference.SizeNames()))
	fs.Int64Var(&o.seed, "seed", 1, "world seed: the same seed gives the same world")
	fs.Float64Var(&o.rate, "rate", rate, "live events per second over all teams (0: none)")
}

// start builds the world and the origin server and listens. run then serves it, with live
// activity, until ctx ends.
func (o *originOpts) start(pub origin.Publisher, log *slog.Logger) (*reference.Server, net.Listener, error) {
	sz, err := reference.SizeByName(o.size)
	if err != nil {
		return nil, nil, err
	}
	world, err := reference.NewWorld(o.seed, sz)
	if err != nil {
		return nil, nil, err
	}
	srv, err := reference.NewServer(reference.ServerConfig{World: world, Token: o.token, Publisher: pub, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	ln, err := tlsfiles.Listen(o.addr, o.tls)
	if err != nil {
		return nil, nil, err
	}
	return srv, ln, nil
}

// run serves srv on ln, generates live activity and republishes pending events on g until
// ctx ends; stopAfter bounds the
// HTTP shutdown once ctx has ended.
func (o *originOpts) run(ctx context.Context, g *errgroup.Group, srv *reference.Server, ln net.Listener,
	stopAfter time.Duration, log *slog.Logger) error {
	var h http.Handler = srv
	if o.wrap != nil {
		h = o.wrap(h)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), stopAfter)
		defer cancel()
		return shutdownOrClose(log)(sctx, hs)
	})
	// Events whose publish failed (NATS down) go out as soon as it is back.
	g.Go(func() error { srv.KeepFlushing(ctx, 500*time.Millisecond); return nil })
	if o.rate > 0 {
		act, err := reference.NewActivity(reference.ActivityConfig{Server: srv, Rate: o.rate, Seed: o.seed, Logger: log})
		if err != nil {
			return err
		}
		g.Go(func() error { return act.Run(ctx) })
	}
	return nil
}

func runOrigin(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "migrate":
			return runOriginMigrate(ctx, args[1:], stdout)
		case "seed":
			return runOriginSeed(ctx, args[1:], stdout)
		}
	}
	fs := weft.NewFlagSet("origin", "Run the reference origin: a deterministic synthetic world served over the origin\n"+
		"contract (docs/origin.md), live activity published to NATS, and fault injection. With --postgres,\n"+
		"the origin on PostgreSQL instead: the contract served from its tables, every change published from\n"+
		"its outbox (weft origin migrate makes the schema).")
	var o originOpts
	o.flags(fs, "addr", 10)
	var pg pgOpts
	pg.flags(fs)
	fs.StringVar(&o.token, "token", "", "origin service token callers must send as a bearer token (empty: no auth)")
	latency := fs.Duration("latency", 0, "fault injection: latency added to every request")
	errRate := fs.Float64("error-rate", 0, "fault injection: fraction of requests answered 500")
	var nats natsOpts
	nats.flags(fs, "NATS server or cluster URL(s) to publish to, comma-separated seeds; empty starts an embedded NATS server with JetStream on --nats-addr, which edges and proxies can connect to")
	var stream streamOpts
	stream.flags(fs)
	var tlsFlags tlsfiles.ServerFlags
	tlsFlags.Flags(fs, "edges")
	var proc serve.Process
	proc.Flags(fs)
	log, err := weft.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if err := cli.CheckListenAddr("--addr", o.addr); err != nil {
		return err
	}
	if err := proc.Apply(ctx, log); err != nil {
		return err
	}
	var tlsMetrics []prometheus.Collector
	if o.tls, tlsMetrics, err = tlsFlags.Config(log); err != nil {
		return err
	}
	// The origin owns the stream (docs/origin.md): it creates it; edges only use it.
	scfg, err := stream.config()
	if err != nil {
		return err
	}
	nats.stream, nats.updateStream = &scfg, stream.update
	if pg.url != "" {
		if *latency != 0 || *errRate != 0 {
			return errors.New("--latency and --error-rate are the reference origin's: drop them with --postgres")
		}
		return pg.run(ctx, &o, &nats, proc, stdout, log, tlsMetrics...)
	}
	faults := reference.Faults{Latency: *latency, ErrorRate: *errRate}
	if err := faults.Validate(); err != nil {
		return err
	}
	if _, err := reference.SizeByName(o.size); err != nil {
		return err // before starting NATS
	}
	begin := time.Now()
	bus, emb, closeBus, err := nats.connect(ctx, log, "weft-origin")
	if err != nil {
		return err
	}
	defer closeBus()
	srv, ln, err := o.start(bus, log)
	if err != nil {
		return err
	}
	srv.SetFaults(faults)
	ops, err := proc.ServeOps(ctx, o.instrument(bus, tlsMetrics...), log)
	if err != nil {
		ln.Close()
		return err
	}
	natsURL := nats.conn.Redacted()
	if emb != nil {
		natsURL = emb.ClientURL()
	}
	teams := srv.TeamIDs()
	fmt.Fprintf(stdout, "weft origin: %s world (%d teams) ready in %v\n  origin  %s://%s/origin/v1/teams/%s\n  nats    %s\n  events  %.0f/s\n",
		o.size, len(teams), time.Since(begin).Round(time.Millisecond), tlsfiles.Scheme(o.tls, false), ln.Addr(), teams[0], natsURL, o.rate)
	if ops != "" {
		fmt.Fprintf(stdout, "  ops     http://%s\n", ops)
	}

	g, gctx := errgroup.WithContext(ctx)
	if err := o.run(gctx, g, srv, ln, 5*time.Second, log); err != nil {
		ln.Close()
		return err
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("origin stopped")
	return err
}

// instrument counts the origin's requests (by method and status: a path names a team) and
// returns its operator endpoints: /metrics (with the runtime's, the process's and the NATS
// connection's) and /healthz.
func (o *originOpts) instrument(bus *pubsub.Bus, more ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(more...)
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_origin_requests_total",
		Help: "Requests to the reference origin, by method and status code."}, []string{"method", "code"})
	reg.MustRegister(requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		bus.ConnMetrics(), version.Collector())
	o.wrap = func(h http.Handler) http.Handler { return promhttp.InstrumentHandlerCounter(requests, h) }
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}
