package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-edge/weft/loadtest"
)

// runFronts runs the fronts scenario: weft's proxy beside nginx, --runs times.
func runFronts(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weftLoadtest.NewFlagSet("fronts", "weft's proxy against nginx with `hash $arg_team consistent` (Debian's nginx-light), each in\n"+
		"front of 3 edges on a fresh cluster: added connection setup latency, added request round\n"+
		"trip, RSS per proxied connection, and the time until the clients of a SIGKILLed edge are\n"+
		"all back. Needs nginx on the PATH or at /usr/sbin/nginx.")
	var c loadtest.FrontsConfig
	fronts := fs.String("fronts", "weft,nginx,relay", "the fronts to measure, in order (relay: a plain Go TCP relay to one edge, the floor of a front in Go)")
	fs.StringVar(&c.Size, "size", "small", "the origin's world")
	fs.IntVar(&c.Setups, "setups", 1000, "connection setups through each front, and as many straight to the edge")
	fs.Float64Var(&c.SetupRate, "setup-rate", 200, "setup pairs a second")
	fs.IntVar(&c.Requests, "requests", 2000, "users.info round trips each way")
	fs.Float64Var(&c.RequestRate, "request-rate", 500, "round-trip pairs a second")
	fs.IntVar(&c.Idle, "idle", 2000, "idle connections held through each front for its RSS per connection")
	fs.IntVar(&c.StormClients, "storm-clients", 3000, "clients of the storm behind each front (about a third lose their edge); negative: no storm")
	fs.DurationVar(&c.StormObserve, "storm-observe", 60*time.Second, "how long to wait for the storm's clients to be back")
	proxyArgs := fs.String("proxy-args", "", "extra flags for weft's proxies, space-separated (to measure alternatives)")
	runs := fs.Int("runs", 3, "runs of everything: each figure is their median, with their range")
	out := fs.String("out", "results/fronts", "directory for fronts.json; empty: terminal only")
	weft := weftFlag(fs)
	log, err := weftLoadtest.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if *runs < 1 {
		return fmt.Errorf("--runs: want at least 1, got %d", *runs)
	}
	if c.Bin, err = weftBinary(*weft); err != nil {
		return err
	}
	if c.WorkerBin, err = workerBinary(); err != nil {
		return err
	}
	c.Fronts = strings.Split(*fronts, ",")
	c.ProxyArgs = strings.Fields(*proxyArgs)
	c.Stderr = os.Stderr
	c.Log = func(format string, a ...any) { log.Info(fmt.Sprintf(format, a...)) }
	var all [][]*loadtest.FrontFigures
	for run := 1; run <= *runs; run++ {
		c.Log("run %d of %d", run, *runs)
		figs, err := loadtest.RunFronts(ctx, c)
		if err != nil {
			return fmt.Errorf("fronts, run %d: %w", run, err)
		}
		all = append(all, figs)
	}
	r := loadtest.FrontsReport(all, fmt.Sprintf("%s world; %d setups and %d round trips each way; %d idle connections; a storm of %d clients; %d runs",
		c.Size, c.Setups, c.Requests, c.Idle, c.StormClients, *runs), "weft-loadtest fronts "+strings.Join(args, " "))
	r.Print(stdout)
	if *out == "" {
		return nil
	}
	if err := r.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  report: %s\n", filepath.Join(*out, "fronts.json"))
	return nil
}
