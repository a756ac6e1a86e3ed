package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
)

// runDev runs the whole stack in one process on loopback: embedded NATS with JetStream, the
// reference origin with live activity, and an edge node. It prints where everything is and a
// few ready tokens.
func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("dev", "Run everything in one process on loopback: embedded NATS, the reference origin with\n"+
		"live activity, and an edge node. Prints URLs and ready-made tokens.")
	var o edgeOpts
	o.flags(fs, "127.0.0.1:8080")
	originAddr := fs.String("origin-addr", "127.0.0.1:8081", "address the reference origin listens on")
	size := fs.String("size", "small", "world size: "+fmt.Sprint(origin.SizeNames()))
	seed := fs.Int64("seed", 1, "world seed")
	rate := fs.Float64("rate", 20, "live events per second over all teams")
	fs.StringVar(&o.secret, "token-secret", token.DevSecret, "token secret (the dev default is public: never use it in production)")
	var nats natsOpts
	nats.flags(fs)
	newLog := logFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLog()
	if err != nil {
		return err
	}
	sz, err := origin.SizeByName(*size)
	if err != nil {
		return err
	}
	world, err := origin.NewWorld(*seed, sz)
	if err != nil {
		return err
	}
	bus, emb, closeBus, err := nats.connect(ctx, log, "weft-dev")
	if err != nil {
		return err
	}
	defer closeBus()
	osrv, err := origin.NewServer(origin.ServerConfig{World: world, Token: o.originToken, Publisher: bus, Logger: log})
	if err != nil {
		return err
	}
	oln, err := net.Listen("tcp", *originAddr)
	if err != nil {
		return err
	}
	ohs := &http.Server{Handler: osrv, ReadHeaderTimeout: 10 * time.Second}
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
	fmt.Fprintf(stdout, "weft dev: %s world, %d teams, %.0f events/s\n", sz.Name, len(osrv.TeamIDs()), *rate)
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
	g.Go(func() error {
		if err := ohs.Serve(oln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return serveEdge(gctx, srv, eln, o.drain, log) })
	if *rate > 0 {
		act, err := origin.NewActivity(origin.ActivityConfig{Server: osrv, Rate: *rate, Seed: *seed, Logger: log})
		if err != nil {
			return err
		}
		g.Go(func() error { return act.Run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		// The edge drains first (serveEdge returns after it); the origin goes after it.
		sctx, cancel := context.WithTimeout(context.Background(), o.drain+15*time.Second)
		defer cancel()
		return ohs.Shutdown(sctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("dev stack stopped")
	return err
}
