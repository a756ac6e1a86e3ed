package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/proxycmd"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/pubsub"
)

// runDev runs the whole stack in one process on loopback: embedded NATS with JetStream, the
// reference origin with live activity, and an edge node (or, with --edges N, N edges in a ring
// behind a proxy). It prints where everything is and a few ready tokens.
func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weft.NewFlagSet("dev", "Run everything in one process on loopback: embedded NATS, the reference origin with\n"+
		"live activity, and an edge node (or --edges N edges behind a proxy). Prints URLs and ready-made tokens.")
	var o edgeOpts
	o.flags(fs, "127.0.0.1:8080")
	var orig originOpts
	orig.flags(fs, "origin-addr", 20)
	fs.StringVar(&o.secret, "token-secret", token.DevSecret, "token secret (the dev default is public: never use it in production)")
	edges := fs.Int("edges", 1, "edge nodes; more than 1 runs them in a ring behind a proxy listening on --addr")
	var nats natsOpts
	nats.flags(fs, "NATS server or cluster URL(s), comma-separated seeds; empty starts an embedded NATS server with JetStream (the edges run in this process and use it)")
	var stream streamOpts
	stream.flags(fs)
	log, err := weft.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if *edges < 1 || *edges > 64 {
		return fmt.Errorf("--edges: want 1 to 64, got %d", *edges)
	}
	// The dev process runs the origin, so its own bus owns the stream and creates it before
	// the edges (and the proxy) connect; they only use it.
	scfg, err := stream.config()
	if err != nil {
		return err
	}
	nats.stream, nats.updateStream = &scfg, stream.update
	bus, emb, closeBus, err := nats.connect(ctx, log, "weft-dev")
	if err != nil {
		return err
	}
	defer closeBus()
	orig.token = o.originToken
	osrv, oln, err := orig.start(bus, log)
	if err != nil {
		return err
	}
	defer oln.Close() // after a clean run the origin's server has closed it already
	o.originURL = "http://" + oln.Addr().String()
	keys, err := token.New([]byte(o.secret))
	if err != nil {
		return err
	}
	natsURL := nats.conn.Redacted()
	if emb != nil {
		natsURL = emb.ClientURL()
	}

	// Once something runs in g, a failure to start the rest stops it and waits for it: what
	// runDev starts, it stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	fail := func(err error) error {
		cancel()
		_ = g.Wait()
		return err
	}
	var base string
	if *edges == 1 {
		srv, eln, err := o.listen(o.addr, bus, log)
		if err != nil {
			return err
		}
		base = "http://" + eln.Addr().String()
		fmt.Fprintf(stdout, "weft dev: %s world, %d teams, %.0f events/s\n", orig.size, len(osrv.TeamIDs()), orig.rate)
		fmt.Fprintf(stdout, "  edge    %s   (WebSocket ws://%s/ws, metrics %s/metrics)\n", base, eln.Addr(), base)
		g.Go(func() error { return serveEdge(gctx, srv, eln, o.drain, log) })
	} else {
		if base, err = devRing(gctx, g, *edges, o, emb, bus, log, stdout, orig.size, len(osrv.TeamIDs()), orig.rate); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintf(stdout, "  origin  %s\n  nats    %s\n\ntokens (24h):\n", o.originURL, natsURL)
	var first string
	for i, team := range osrv.TeamIDs()[:min(3, len(osrv.TeamIDs()))] {
		for _, u := range osrv.Users(team)[:2] {
			tok, err := keys.Issue(team, u.ID, 24*time.Hour)
			if err != nil {
				return fail(err)
			}
			if i == 0 && first == "" {
				first = tok
			}
			fmt.Fprintf(stdout, "  %s %s %-22s %s\n", team, u.ID, u.Name, tok)
		}
	}
	fmt.Fprintf(stdout, "\ntry:\n  curl -s -H 'Authorization: Bearer %s' -d '{}' %s/api/boot\n", first, base)
	fmt.Fprintf(stdout, "  curl -s -H 'Authorization: Bearer %s' -d '{\"users\":[\"%s\"]}' %s/api/users.info\n\n",
		first, osrv.Users(osrv.TeamIDs()[0])[0].ID, base)

	// The edges drain first (serveEdge returns after it); the origin stops within the same bound.
	if err := orig.run(gctx, g, osrv, oln, o.drain+15*time.Second, log); err != nil {
		return fail(err)
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("dev stack stopped")
	return err
}

// devRing starts n edges (edge-1 … edge-n, each on its own NATS connection and a free port)
// and a proxy on o.addr in front of them, in g; it prints them and returns the proxy's URL.
func devRing(ctx context.Context, g *errgroup.Group, n int, o edgeOpts, emb *pubsub.Embedded, bus *pubsub.Bus,
	log *slog.Logger, stdout io.Writer, size string, teams int, rate float64) (string, error) {
	connect := func(name string) (*pubsub.Bus, error) {
		if emb == nil {
			return bus, nil // an external NATS: every edge shares the process's connection
		}
		return pubsub.Connect(ctx, pubsub.Config{Embedded: emb, Name: name, Logger: log})
	}
	// Each edge and the proxy have a NATS connection of their own, theirs to close; the
	// process's (an external NATS) is runDev's.
	closeBus := func(b *pubsub.Bus) {
		if b != bus {
			b.Close()
		}
	}
	pbus, err := connect("weft-dev-proxy")
	if err != nil {
		return "", err
	}
	popts := proxycmd.Options{Secret: o.secret, DownFor: 5 * time.Second, ConnectRate: 2000, ConnectBurst: 2000, EdgeRate: 150, EdgeBurst: 150}
	psrv, err := popts.Server(pbus, log, pbus.ConnMetrics())
	if err != nil {
		closeBus(pbus)
		return "", err
	}
	pln, err := net.Listen("tcp", o.addr)
	if err != nil {
		closeBus(pbus)
		return "", err
	}
	base := "http://" + pln.Addr().String()
	fmt.Fprintf(stdout, "weft dev: %s world, %d teams, %.0f events/s, %d edges behind a proxy\n", size, teams, rate, n)
	fmt.Fprintf(stdout, "  proxy   %s   (WebSocket ws://%s/ws, metrics %s/metrics)\n", base, pln.Addr(), base)
	// The proxy serves from here on (503 until it hears an edge), so that g owns it, and
	// stops it, should an edge fail to start.
	g.Go(func() error {
		defer closeBus(pbus)
		return proxycmd.Serve(ctx, psrv, pln, log)
	})
	for i := 1; i <= n; i++ {
		eo := o
		eo.node = fmt.Sprintf("edge-%d", i)
		ebus, err := connect("weft-dev-" + eo.node)
		if err != nil {
			return "", err
		}
		srv, eln, err := eo.listen("127.0.0.1:0", ebus, log)
		if err != nil {
			closeBus(ebus)
			return "", err
		}
		fmt.Fprintf(stdout, "  %-7s http://%s\n", eo.node, eln.Addr())
		g.Go(func() error {
			defer closeBus(ebus)
			return serveEdge(ctx, srv, eln, eo.drain, log)
		})
	}
	return base, nil
}
