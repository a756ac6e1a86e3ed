package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/loadtest"
)

// runStorm runs the reconnect storm, once or --runs times of each kind, and writes its
// figures and plots to --out.
func runStorm(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weftLoadtest.NewFlagSet("storm", "The reconnect storm: the reference origin, edges and proxies as processes on\n"+
		"loopback, real clients in worker processes, one edge SIGKILLed; run with admission\n"+
		"control and pacing, then without, and report what they bought.")
	clients := fs.Int("clients", 15000, "clients, spread over the world's teams and the proxies")
	workers := fs.Int("workers", 4, "client processes (a process may hold 20,000 files)")
	edges := fs.Int("edges", 3, "edge processes")
	proxies := fs.Int("proxies", 2, "proxy processes")
	front := fs.String("front", loadtest.FrontWeft, "what the proxies are: weft (weft proxies over edges in a ring) or nginx (nginx with `hash $arg_team consistent` over standalone edges, the baseline; needs nginx, e.g. Debian's nginx-light)")
	size := fs.String("size", "small", "the origin's world")
	rate := fs.Float64("rate", 20, "live activity, events/s over all teams")
	budget := fs.String("memory-budget", "1GiB", "each edge's memory budget in the protected run")
	steady := fs.Duration("steady", 10*time.Second, "how long the cluster runs before the kill")
	observe := fs.Duration("observe", 90*time.Second, "how long to wait for every client after the kill")
	out := fs.String("out", "", "directory for storm.json, the plots and the metrics of every server, e.g. results/storm-15k (empty: print only)")
	weft := weftFlag(fs)
	edgeArgs := fs.String("edge-args", "", "extra flags for every edge, space-separated (e.g. --gc-percent 200; each edge's operator listener, for the profiler, is printed in the edges' output)")
	probers := fs.Int("probers", 100, "clients (of --clients) in a probe process of their own, sending users.info")
	probeEvery := fs.Duration("probe-every", 250*time.Millisecond, "how often each prober sends users.info")
	nice := fs.Int("worker-nice", 19, "nice value of the load workers, which stand in for devices elsewhere (0: none)")
	idle := fs.Bool("worker-idle", false, "run the load workers under SCHED_IDLE (chrt --idle) instead of --worker-nice: only on CPU time nothing else wants")
	proxyArgs := fs.String("proxy-args", "", "extra flags for every proxy, space-separated")
	serverProcs := fs.Int("server-procs", 4, "GOMAXPROCS of every edge and proxy (their --gomaxprocs), in both runs: five servers share this machine's cores; 0: Go's own (one per core)")
	kill := fs.Int("kill", 1, "edges to SIGKILL, the busiest first")
	oomLimit := fs.String("oom-limit", "", "kill any edge whose RSS passes this (e.g. 235MiB), as a container's memory limit would; empty: none")
	only := fs.String("only", "", "run only the protected or unprotected storm")
	runs := fs.Int("runs", 1, "storms of each kind, one after the other: single runs vary (the undisturbed p99 by up to 2×), so a budget is judged on several")
	log, err := weftLoadtest.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	oom, err := cli.ParseBytes(*oomLimit)
	if err != nil {
		return fmt.Errorf("--oom-limit: %w", err)
	}
	bin, err := weftBinary(*weft)
	if err != nil {
		return err
	}
	worker, err := workerBinary()
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { log.Info(fmt.Sprintf(format, a...)) }
	var figs []*loadtest.StormFigures
	if *runs < 1 {
		return fmt.Errorf("--runs: want at least 1, got %d", *runs)
	}
	for _, protected := range []bool{true, false} {
		if (*only == "protected" && !protected) || (*only == "unprotected" && protected) {
			continue
		}
		for run := 1; run <= *runs; run++ {
			logf("storm, protected=%v, run %d of %d", protected, run, *runs)
			mdir := ""
			if *out != "" {
				mdir = filepath.Join(*out, map[bool]string{true: "metrics-protected", false: "metrics-unprotected"}[protected])
				if run > 1 {
					mdir += fmt.Sprintf("-run%d", run)
				}
			}
			f, err := loadtest.RunStorm(ctx, loadtest.StormConfig{MetricsDir: mdir, Kill: *kill, OOMLimit: oom, Bin: bin, WorkerBin: worker, Clients: *clients, Workers: *workers, Edges: *edges,
				Proxies: *proxies, Size: *size, Rate: *rate, Protected: protected, MemoryBudget: *budget,
				Steady: *steady, Observe: *observe, Probers: *probers, ProbeEvery: *probeEvery, WorkerNice: *nice, WorkerIdle: *idle, ServerProcs: *serverProcs, Stderr: os.Stderr, Log: logf, EdgeArgs: strings.Fields(*edgeArgs), ProxyArgs: strings.Fields(*proxyArgs), Front: *front})
			if err != nil {
				return fmt.Errorf("storm (protected=%v, run %d): %w", protected, run, err)
			}
			f.Run = run
			figs = append(figs, f)
			fmt.Fprint(stdout, f.Summary())
		}
	}
	if *runs > 1 {
		fmt.Fprint(stdout, loadtest.StormRunsSummary(figs))
	}
	if *out == "" {
		return nil
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(figs, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "storm.json"), b, 0o644); err != nil {
		return err
	}
	return loadtest.WriteStormPlots(*out, figs)
}
