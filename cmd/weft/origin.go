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

	"github.com/weft-edge/weft/origin"
)

func runOrigin(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("origin", "Run the reference origin: a deterministic synthetic world served over the origin\n"+
		"contract (PROTOCOL.md section 7), live activity published to NATS, and fault injection.")
	addr := fs.String("addr", "127.0.0.1:8081", "address the origin listens on")
	size := fs.String("size", "small", "world size: "+fmt.Sprint(origin.SizeNames()))
	seed := fs.Int64("seed", 1, "world seed: the same seed gives the same world")
	token := fs.String("token", "", "origin service token callers must send as a bearer token (empty: no auth)")
	rate := fs.Float64("rate", 10, "live events per second over all teams (0: none)")
	latency := fs.Duration("latency", 0, "fault injection: latency added to every request")
	errRate := fs.Float64("error-rate", 0, "fault injection: fraction of requests answered 500")
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
	faults := origin.Faults{Latency: *latency, ErrorRate: *errRate}
	if err := faults.Validate(); err != nil {
		return err
	}
	begin := time.Now()
	world, err := origin.NewWorld(*seed, sz)
	if err != nil {
		return err
	}
	bus, emb, closeBus, err := nats.connect(ctx, log, "weft-origin")
	if err != nil {
		return err
	}
	defer closeBus()
	srv, err := origin.NewServer(origin.ServerConfig{World: world, Token: *token, Publisher: bus, Logger: log})
	if err != nil {
		return err
	}
	srv.SetFaults(faults)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	natsURL := nats.url
	if emb != nil {
		natsURL = emb.ClientURL()
	}
	teams := srv.TeamIDs()
	fmt.Fprintf(stdout, "weft origin: %s world (%d teams) built in %v\n  origin  http://%s/origin/v1/teams/%s\n  nats    %s\n  events  %.0f/s\n",
		sz.Name, len(teams), time.Since(begin).Round(time.Millisecond), ln.Addr(), teams[0], natsURL, *rate)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if *rate > 0 {
		act, err := origin.NewActivity(origin.ActivityConfig{Server: srv, Rate: *rate, Seed: *seed, Logger: log})
		if err != nil {
			return err
		}
		g.Go(func() error { return act.Run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("origin stopped")
	return err
}
