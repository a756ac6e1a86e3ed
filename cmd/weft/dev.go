package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/token"
)

// runDev runs the whole stack in one process on loopback: embedded NATS with JetStream, the
// reference origin with live activity, and an edge node. It prints where everything is and a
// few ready tokens.
func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("dev", "Run everything in one process on loopback: embedded NATS, the reference origin with\n"+
		"live activity, and an edge node. Prints URLs and ready-made tokens.")
	var o edgeOpts
	o.flags(fs, "127.0.0.1:8080")
	var orig originOpts
	orig.flags(fs, "origin-addr", 20)
	fs.StringVar(&o.secret, "token-secret", token.DevSecret, "token secret (the dev default is public: never use it in production)")
	var nats natsOpts
	nats.flags(fs)
	log, err := parseLogged(fs, args)
	if err != nil {
		return err
	}
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
	o.originURL = "http://" + oln.Addr().String()
	srv, err := o.server(bus, log)
	if err != nil {
		oln.Close()
		return err
	}
	eln, err := net.Listen("tcp", o.addr)
	if err != nil {
		oln.Close()
		return err
	}
	keys, err := token.New([]byte(o.secret))
	if err != nil {
		return err
	}
	natsURL := nats.url
	if emb != nil {
		natsURL = emb.ClientURL()
	}
	base := "http://" + eln.Addr().String()
	fmt.Fprintf(stdout, "weft dev: %s world, %d teams, %.0f events/s\n", orig.size, len(osrv.TeamIDs()), orig.rate)
	fmt.Fprintf(stdout, "  edge    %s   (WebSocket ws://%s/ws, metrics %s/metrics)\n", base, eln.Addr(), base)
	fmt.Fprintf(stdout, "  origin  %s\n  nats    %s\n\ntokens (24h):\n", o.originURL, natsURL)
	var first string
	for i, team := range osrv.TeamIDs()[:min(3, len(osrv.TeamIDs()))] {
		for _, u := range osrv.Users(team)[:2] {
			tok, err := keys.Issue(team, u.ID, 24*time.Hour)
			if err != nil {
				return err
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

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveEdge(gctx, srv, eln, o.drain, log) })
	// The edge drains first (serveEdge returns after it); the origin stops within the same bound.
	if err := orig.run(gctx, g, osrv, oln, o.drain+15*time.Second, log); err != nil {
		oln.Close()
		eln.Close()
		return err
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("dev stack stopped")
	return err
}
