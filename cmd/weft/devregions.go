package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/proxycmd"
	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/internal/sleep"
	"github.com/weft-edge/weft/internal/wan"
	"github.com/weft-edge/weft/pubsub"
)

// `weft dev --regions N`: the topology of docs/architecture.md ("Regions") in one process. The
// home region runs the hub, an embedded NATS server in JetStream domain "hub" taking leaf node
// connections, where the origin publishes and keeps the stream of record and the regions'
// mirrors. Every other region runs an embedded leaf node in a domain of its own, connected to
// the hub through a simulated WAN link (internal/wan), and reaches the origin's HTTP port
// through another link of the same round trip, so that cold loads there feel the distance.
// Each region has its edges and a proxy whose fallbacks are the other regions, nearest first.
// Traffic between regions other than NATS and the origin (a proxy routing to a far region's
// edge in a failover) crosses no link. devcontrol.go's endpoint kills and starts a region's
// edges.

// maxRegions caps --regions: each region is a NATS server, a proxy and edges in one process.
const maxRegions = 5

// regionNames are the regions' names, home first; region x's leaf node is in domain region-x.
var regionNames = [maxRegions]string{"home", "a", "b", "c", "d"}

// hubDomain is the JetStream domain of the home region's hub.
const hubDomain = "hub"

// devRegion is one region of `weft dev --regions`.
type devRegion struct {
	name       string
	rtt        time.Duration    // round trip to home; 0 at home
	nats       *pubsub.Embedded // the hub at home, the region's leaf node elsewhere
	natsLink   *wan.Link        // the leaf node's link to the hub; nil at home
	originLink *wan.Link        // the edges' link to the origin; nil at home
}

func (r *devRegion) domain() string {
	if r.name == regionNames[0] {
		return hubDomain
	}
	return "region-" + r.name
}

// parseRTTs reads --wan-rtt: the round trips of regions 1 … n-1 to home.
func parseRTTs(s string, n int) ([]time.Duration, error) {
	var rtts []time.Duration
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--wan-rtt: %q is not a round trip (like 80ms)", f)
		}
		rtts = append(rtts, d)
	}
	if len(rtts) < n-1 {
		return nil, fmt.Errorf("--wan-rtt: %d regions away from home need %d round trips, got %d (%q)", n-1, n-1, len(rtts), s)
	}
	return rtts[:n-1], nil
}

// startRegions starts the hub (on --nats-addr) and, for each other region, its WAN link to
// the hub and its leaf node, and waits for the leaf nodes to connect, so that the origin makes
// their mirrors at its first try. stop stops what it started (safe to call once, after
// everything using them has stopped).
func startRegions(ctx context.Context, nats *natsOpts, rtts []time.Duration, log *slog.Logger) (regions []*devRegion, stop func(), err error) {
	stop = func() {
		for _, r := range slices.Backward(regions) {
			if r.natsLink != nil { // a leaf node: stop it before its link, so that it does not reconnect
				r.nats.Shutdown()
				_ = r.natsLink.Close()
			} else {
				r.nats.Shutdown()
			}
			if r.originLink != nil {
				_ = r.originLink.Close()
			}
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	hub, err := nats.startEmbedded(pubsub.EmbeddedConfig{ServerName: "hub", Domain: hubDomain, LeafListen: true, Logger: log})
	if err != nil {
		return nil, stop, err
	}
	regions = append(regions, &devRegion{name: regionNames[0], nats: hub})
	for i, rtt := range rtts {
		r := &devRegion{name: regionNames[i+1], rtt: rtt}
		if r.natsLink, err = wan.Listen(wan.Config{Upstreams: []string{hub.LeafAddr()}, RTT: rtt}); err != nil {
			return nil, stop, err
		}
		regions = append(regions, r) // stop closes its link from here on
		// The leaf node listens on a free port of its own: its ClientURL is printed for tools.
		leaf, err := pubsub.NewEmbedded(pubsub.EmbeddedConfig{ServerName: "leaf-" + r.name, Domain: r.domain(),
			LeafRemotes: []string{"nats-leaf://" + r.natsLink.Addr()}, Logger: log})
		if err != nil {
			return nil, stop, err
		}
		if err := leaf.Start(); err != nil {
			return nil, stop, fmt.Errorf("embedded NATS of region %s: %w", r.name, err)
		}
		r.nats = leaf
	}
	for _, r := range regions[1:] {
		if err := waitFor(ctx, 15*time.Second, func() bool { return r.nats.LeafConnections() == 1 }); err != nil {
			return nil, stop, fmt.Errorf("region %s: its NATS leaf node did not connect to the hub: %w", r.name, err)
		}
	}
	// A leaf node's JetStream answers on the hub a moment after the connection is up (its
	// interest has to cross the link): wait for it, or the origin's first attempt at the
	// region's mirror fails and warns.
	nc, err := natsgo.Connect(hub.ClientURL(), natsgo.Name("weft-dev-regions"))
	if err != nil {
		return nil, stop, err
	}
	defer nc.Close()
	for _, r := range regions[1:] {
		if err := waitFor(ctx, 15*time.Second, func() bool {
			_, err := nc.Request("$JS."+r.domain()+".API.INFO", nil, time.Second)
			return err == nil
		}); err != nil {
			return nil, stop, fmt.Errorf("region %s: its JetStream does not answer on the hub: %w", r.name, err)
		}
	}
	return regions, stop, nil
}

// linkOrigin puts a WAN link of each far region's round trip in front of the origin at addr.
func linkOrigin(regions []*devRegion, addr string) error {
	for _, r := range regions[1:] {
		l, err := wan.Listen(wan.Config{Upstreams: []string{addr}, RTT: r.rtt})
		if err != nil {
			return err
		}
		r.originLink = l
	}
	return nil
}

// waitFor polls cond until it holds, ctx ends or within passes.
func waitFor(ctx context.Context, within time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for !cond() {
		if err := sleep.For(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// fallbacks is region i's --fallback-regions: the others, nearest first. The WAN is a star
// around home, so home is nearest to every far region and the others follow by their own
// round trip to home (a→home→b costs a's plus b's).
func fallbacks(regions []*devRegion, i int) []string {
	var others []*devRegion
	for j, r := range regions {
		if j != i {
			others = append(others, r)
		}
	}
	slices.SortStableFunc(others, func(a, b *devRegion) int { return int(a.rtt - b.rtt) })
	var names []string
	for _, r := range others {
		names = append(names, r.name)
	}
	return names
}

// devRegionSites starts every region's proxy and edges in g and prints them; it returns the
// home proxy's URL. The home proxy listens on homeLn, with front, the others on free ports.
func devRegionSites(ctx context.Context, g *errgroup.Group, regions []*devRegion, edges int, o edgeOpts, homeLn net.Listener,
	front func(http.Handler) http.Handler, opsAddr string, log *slog.Logger, stdout io.Writer) (string, error) {
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return "", fmt.Errorf("--addr: %w", err)
	}
	var home string
	control := &devControl{regions: map[string]*devEdges{}}
	for i, r := range regions {
		s := devSite{region: r.name, nats: r.nats, originURL: o.originURL, proxyAddr: o.addr, opsAddr: opsAddr,
			fallback: fallbacks(regions, i), edges: edges, prefix: "edge-" + r.name + "-", proxyLn: homeLn, front: front}
		note := fmt.Sprintf("NATS hub %s, falls back to %s", r.nats.ClientURL(), strings.Join(s.fallback, ", "))
		if i > 0 {
			s.fallbackDomain = hubDomain
			s.originURL = "http://" + r.originLink.Addr()
			s.proxyAddr, s.proxyLn, s.front = net.JoinHostPort(host, "0"), nil, nil
			s.opsAddr = "" // the home proxy's only
			note = fmt.Sprintf("%s round trip to home, NATS leaf %s, falls back to %s", r.rtt, r.nats.ClientURL(), strings.Join(s.fallback, ", "))
		}
		url, edges, err := devSiteStart(ctx, g, s, o, nil, log, stdout, fmt.Sprintf("  region %-4s proxy", r.name), note)
		if err != nil {
			return "", fmt.Errorf("region %s: %w", r.name, err)
		}
		if i == 0 {
			home = url
		}
		control.order = append(control.order, r.name)
		control.regions[r.name] = edges
	}
	return home, serveControl(ctx, g, control, host, stdout, "/regions/{name}/kill kills a region's edges as a crash would, POST /regions/{name}/start starts new ones")
}

// devSite is a proxy and its edges: the ring of `weft dev --edges N`, or one region.
type devSite struct {
	region         string           // "" = the default region
	nats           *pubsub.Embedded // nil: every part shares the process's bus (an external NATS)
	fallbackDomain string           // JetStream domain of the stream of record, for a region's edges
	originURL      string
	proxyAddr      string
	fallback       []string // the proxy's --fallback-regions
	edges          int
	prefix         string // edges are named prefix1 …
	opsAddr        string // the proxy's operator listener; "": none
	// proxyLn, when set, is the proxy's listener, made (and printed) by the caller.
	proxyLn net.Listener
	// edgeAddr is where the edges listen: "" for free ports. The edge of a site without a
	// proxy listens on a fixed address, taken again by every new life.
	edgeAddr string
	// front, when set, wraps the handler of the site's public listener (the proxy's, or the
	// edge's of a site without one): weft dev's page.
	front func(http.Handler) http.Handler
}

// buses says how the site's parts get their NATS connections: connect makes one (or hands
// out the process's bus, with an external NATS), release closes one it made.
func (s devSite) buses(ctx context.Context, bus *pubsub.Bus, log *slog.Logger) (connect func(string) (*pubsub.Bus, error), release func(*pubsub.Bus)) {
	connect = func(name string) (*pubsub.Bus, error) {
		if s.nats == nil {
			return bus, nil // an external NATS: every edge shares the process's connection
		}
		cfg := pubsub.Config{Embedded: s.nats, Name: name, Logger: log, FallbackDomain: s.fallbackDomain}
		if s.fallbackDomain == "" {
			return pubsub.Connect(ctx, cfg)
		}
		// A far region's stream is the mirror the origin makes a moment after it connected:
		// retry while it is missing.
		var b *pubsub.Bus
		var err error
		werr := waitFor(ctx, 30*time.Second, func() bool {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			b, err = pubsub.Connect(cctx, cfg)
			return err == nil
		})
		if werr != nil && err == nil {
			err = werr
		}
		return b, err
	}
	// Each edge and the proxy have a NATS connection of their own, theirs to close; the
	// process's (an external NATS) is runDev's.
	release = func(b *pubsub.Bus) {
		if b != bus {
			b.Close()
		}
	}
	return connect, release
}

// devSiteStart starts s's proxy and its edges (each on its own NATS connection and a free
// port) in g, prints them (the proxy's line starts with label and ends with note) and returns
// the proxy's URL.
func devSiteStart(ctx context.Context, g *errgroup.Group, s devSite, o edgeOpts, bus *pubsub.Bus,
	log *slog.Logger, stdout io.Writer, label, note string) (string, *devEdges, error) {
	connect, closeBus := s.buses(ctx, bus, log)
	pbus, err := connect("weft-dev-proxy-" + s.region)
	if err != nil {
		return "", nil, err
	}
	popts := proxycmd.Options{Secret: o.secret, DownFor: 5 * time.Second, ConnectRate: 2000, ConnectBurst: 2000, EdgeRate: 150, EdgeBurst: 150,
		Region: s.region, Fallback: strings.Join(s.fallback, ",")}
	psrv, _, err := popts.Server(pbus, log, pbus.ConnMetrics()) // no TLS: weft dev stays plain on loopback
	if err != nil {
		closeBus(pbus)
		return "", nil, err
	}
	pln := s.proxyLn
	if pln == nil {
		if pln, err = net.Listen("tcp", s.proxyAddr); err != nil {
			closeBus(pbus)
			return "", nil, err
		}
	}
	base := "http://" + pln.Addr().String()
	if note != "" {
		note = "; " + note
	}
	ops, err := (&serve.Process{OpsAddr: s.opsAddr}).ServeOps(ctx, psrv.OpsHandler(), log)
	if err != nil {
		pln.Close()
		closeBus(pbus)
		return "", nil, err
	}
	fmt.Fprintf(stdout, "%s %s   (WebSocket ws://%s/ws%s)\n", label, base, pln.Addr(), note)
	printOps(stdout, label[:len(label)-len(strings.TrimLeft(label, " "))], ops)
	// The proxy serves from here on (503 until it hears an edge), so that g owns it, and
	// stops it, should an edge fail to start.
	g.Go(func() error {
		defer closeBus(pbus)
		var h http.Handler = psrv
		if s.front != nil {
			h = s.front(h)
		}
		return proxycmd.ServeHandler(ctx, psrv, h, pln, 0, log)
	})
	indent := label[:len(label)-len(strings.TrimLeft(label, " "))]
	if s.region != "" {
		indent += "  "
	}
	d := &devEdges{ctx: ctx, g: g, site: s, o: o, connect: connect, release: closeBus, log: log, stdout: stdout, indent: indent}
	if _, err := d.start(); err != nil {
		return "", nil, err
	}
	return base, d, nil
}
