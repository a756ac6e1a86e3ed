package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/internal/token"
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
	edges := fs.Int("edges", 1, "edge nodes; more than 1 runs them in a ring behind a proxy listening on --addr (with --regions: per region)")
	regions := fs.Int("regions", 1, fmt.Sprintf("regions, 1 to %d: more than 1 runs a NATS leaf node, a proxy and --edges edges per region, each region but home behind a simulated WAN (--wan-rtt) to the home region's NATS hub and origin; the home proxy listens on --addr, the others on free ports", maxRegions))
	opsAddr := fs.String("ops-addr", "127.0.0.1:0", "where to serve the operator's endpoints (/metrics, /readyz reasons, /debug/teams, /debug/pprof/) of the edge, or of the home proxy with --edges or --regions; empty: nowhere")
	wanRTT := fs.String("wan-rtt", "80ms,150ms,220ms,300ms", "with --regions: round trips from home to regions a, b, … (comma-separated)")
	var nats natsOpts
	nats.flags(fs, "NATS server or cluster URL(s), comma-separated seeds; empty starts an embedded NATS server with JetStream (the edges run in this process and use it)")
	var stream streamOpts
	stream.flags(fs)
	var pg pgOpts
	fs.StringVar(&pg.url, "postgres", "", "PostgreSQL URL (postgres://user@host/db): run the origin on PostgreSQL instead of the synthetic world, migrating its schema and, when it has no team yet, seeding it with the world of --size and --seed (no synthetic activity: --rate defaults to 0)")
	log, err := weft.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if pg.url != "" && !weft.Given(fs, "rate") {
		orig.rate = 0
	}
	pg.poll, pg.retention = time.Second, 24*time.Hour
	if *edges < 1 || *edges > 64 {
		return fmt.Errorf("--edges: want 1 to 64, got %d", *edges)
	}
	if *regions < 1 || *regions > maxRegions {
		return fmt.Errorf("--regions: want 1 to %d, got %d", maxRegions, *regions)
	}
	var rtts []time.Duration
	if *regions > 1 {
		if nats.conn.URLs != "" {
			return errors.New("--regions runs its own NATS servers (a hub and a leaf node per region): drop --nats")
		}
		if stream.mirrors != "" {
			return errors.New("--regions keeps the regions' mirrors itself: drop --stream-mirrors")
		}
		if rtts, err = parseRTTs(*wanRTT, *regions); err != nil {
			return err
		}
		for _, name := range regionNames[1:*regions] {
			stream.mirrors += "region-" + name + ","
		}
	}
	// The dev process runs the origin, so its own bus owns the stream and creates it before
	// the edges (and the proxy) connect; they only use it.
	scfg, err := stream.config()
	if err != nil {
		return err
	}
	nats.stream, nats.updateStream = &scfg, stream.update
	var regs []*devRegion
	if *regions > 1 {
		var stopRegions func()
		if regs, stopRegions, err = startRegions(ctx, &nats, rtts, log); err != nil {
			return err
		}
		defer stopRegions() // after the bus below is closed, and everything in g has stopped
		nats.started = regs[0].nats
	}
	bus, emb, closeBus, err := nats.connect(ctx, log, "weft-dev")
	if err != nil {
		return err
	}
	defer closeBus()
	orig.token = o.originToken
	dor, err := startDevOrigin(ctx, &orig, &pg, bus, log)
	if err != nil {
		return err
	}
	defer dor.close() // after a clean run the origin's server has closed its listener already
	o.originURL = dor.url
	if regs != nil {
		if err := linkOrigin(regs, dor.ln.Addr().String()); err != nil {
			return err
		}
	}
	keys, err := token.New([]byte(o.secret))
	if err != nil {
		return err
	}
	natsURL := nats.conn.Redacted()
	if emb != nil {
		natsURL = emb.ClientURL()
	}
	users, err := devUsers(dor.teams, keys)
	if err != nil {
		return err
	}
	front := devFront(users)
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
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
	if *edges == 1 && regs == nil {
		// The single edge is a site of its own, without a proxy, on a fixed address: the
		// control endpoint restarts it there, and the page, served by it, reconnects to it.
		site := devSite{region: ring.DefaultRegion, nats: emb, originURL: o.originURL, edges: 1, prefix: "edge-", edgeAddr: o.addr, front: front}
		connect, release := site.buses(gctx, bus, log)
		d := &devEdges{ctx: gctx, g: g, site: site, o: o, connect: connect, release: release, log: log, indent: "  "}
		if _, err := d.start(); err != nil {
			return fail(err)
		}
		addr := d.site.edgeAddr
		base = "http://" + addr
		ops, err := (&serve.Process{OpsAddr: *opsAddr}).ServeOps(gctx, d.ops(), log)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "weft dev: open %s/ in a browser\n\n", base)
		fmt.Fprintf(stdout, "weft dev: %s\n", dor.describe)
		fmt.Fprintf(stdout, "  edge    %s   (WebSocket ws://%s/ws)\n", base, addr)
		printOps(stdout, "  ", ops)
		control := &devControl{order: []string{site.region}, regions: map[string]*devEdges{site.region: d}}
		if err := serveControl(gctx, g, control, host, stdout, "/regions/"+site.region+"/restart restarts the edge on its address, as a crash and a new process would"); err != nil {
			return fail(err)
		}
		d.mu.Lock()
		d.stdout = stdout // later lives print themselves
		d.mu.Unlock()
	} else {
		// The (home) proxy's listener first, so that the page's URL is the first line.
		pln, err := net.Listen("tcp", o.addr)
		if err != nil {
			return fail(fmt.Errorf("--addr: %w", err))
		}
		fmt.Fprintf(stdout, "weft dev: open http://%s/ in a browser\n\n", pln.Addr())
		if regs == nil {
			fmt.Fprintf(stdout, "weft dev: %s, %d edges behind a proxy\n", dor.describe, *edges)
			ring := devSite{nats: emb, originURL: o.originURL, proxyLn: pln, opsAddr: *opsAddr, edges: *edges, prefix: "edge-", front: front}
			if base, _, err = devSiteStart(gctx, g, ring, o, bus, log, stdout, "  proxy  ", ""); err != nil {
				return fail(err)
			}
		} else {
			fmt.Fprintf(stdout, "weft dev: %s, %d regions on a simulated WAN, each with a proxy and %d edge(s)\n",
				dor.describe, len(regs), *edges)
			if base, err = devRegionSites(gctx, g, regs, *edges, o, pln, front, *opsAddr, log, stdout); err != nil {
				return fail(err)
			}
		}
	}
	fmt.Fprintf(stdout, "  origin  %s\n  nats    %s\n\ntokens (24h):\n", o.originURL, natsURL)
	var first string
	for i, team := range dor.teams {
		for _, u := range team.users[:min(2, len(team.users))] {
			tok, err := keys.Issue(team.ID, u.ID, 24*time.Hour)
			if err != nil {
				return fail(err)
			}
			if i == 0 && first == "" {
				first = tok
			}
			fmt.Fprintf(stdout, "  %s %s %-22s %s\n", team.ID, u.ID, u.Name, tok)
		}
	}
	fmt.Fprintf(stdout, "\ntry:\n  curl -s -H 'Authorization: Bearer %s' -d '{}' %s/api/boot\n", first, base)
	fmt.Fprintf(stdout, "  curl -s -H 'Authorization: Bearer %s' -d '{\"users\":[\"%s\"]}' %s/api/users.info\n\n",
		first, dor.teams[0].users[0].ID, base)

	// The edges drain first (serveEdge returns after it); the origin stops within the same bound.
	if err := dor.run(gctx, g, o.drain+15*time.Second); err != nil {
		return fail(err)
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("dev stack stopped")
	return err
}

// printOps prints the operator listener's line, when there is one.
func printOps(stdout io.Writer, indent, ops string) {
	if ops != "" {
		fmt.Fprintf(stdout, "%sops     http://%s   (metrics, /readyz reasons, /debug/teams, /debug/pprof/)\n", indent, ops)
	}
}
