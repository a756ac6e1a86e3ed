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

// runBigTeam runs the bigteam scenario: weft beside a centrifuge server, --runs times.
func runBigTeam(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weftLoadtest.NewFlagSet("bigteam", "One big team's sessions on one server: weft's edge (`weft dev`) and, in the same run, a\n"+
		"server on github.com/centrifugal/centrifuge serving the same cheap clients the same load:\n"+
		"idle RSS per session, publish-to-receive latency of one team-wide event a second beside its\n"+
		"CPU floor, users.info from other sessions meanwhile, and CPU per delivery in a burst.")
	var c loadtest.BigTeamConfig
	fs.StringVar(&c.Size, "size", "32k", "the world `weft dev` serves; its first team is the big team")
	devArgs := fs.String("dev-args", "", "more flags for `weft dev`, space-separated")
	servers := fs.String("servers", "weft,centrifuge", "the servers to measure, in order (weft first: the centrifuge server's world comes from weft's origin)")
	fs.IntVar(&c.Sessions, "sessions", 10_000, "sessions of the team, in worker processes")
	fs.IntVar(&c.PerWorker, "per-worker", 5_000, "sessions per worker process (a process may hold 20,000 files)")
	fs.IntVar(&c.WorkerNice, "worker-nice", 10, "nice value of the workers, which stand in for devices elsewhere")
	fs.IntVar(&c.Probers, "probers", 100, "other sessions asking users.info during the paced phase, in this process")
	fs.DurationVar(&c.ProbeEvery, "probe-every", 100*time.Millisecond, "how often each prober asks")
	fs.IntVar(&c.Paced, "paced", 20, "team-wide events of the paced phase")
	fs.DurationVar(&c.PacedEvery, "paced-every", time.Second, "time between paced events")
	fs.IntVar(&c.Burst, "burst", 200, "team-wide events of the burst, published at once")
	fs.IntVar(&c.Runs, "runs", 3, "runs of everything: each figure is their median, with their range")
	out := fs.String("out", "results/bigteam", "directory for bigteam.json; empty: terminal only")
	weft := weftFlag(fs)
	timeout := fs.Duration("timeout", 60*time.Minute, "the run stops after this, whatever it is doing")
	progress := fs.Bool("progress", true, "print a progress line every 2s on stderr")
	if _, err := weftLoadtest.ParseLogged(fs, args, stdout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("stopped by --timeout %v", *timeout))
	defer cancel()
	var err error
	if c.WeftBin, err = weftBinary(*weft); err != nil {
		return err
	}
	if c.WorkerBin, err = workerBinary(); err != nil {
		return err
	}
	c.DevArgs = strings.Fields(*devArgs)
	c.Servers = strings.Split(*servers, ",")
	c.Stderr = os.Stderr
	if *progress {
		c.Progress = os.Stderr
	}
	f, err := loadtest.RunBigTeam(ctx, c)
	if err != nil {
		return fmt.Errorf("bigteam: %w", err)
	}
	r := loadtest.BigTeamReport(f, fmt.Sprintf("team %s (`weft dev --size %s %s`), %d sessions + %d probers; %d paced events, a burst of %d; %d runs",
		f.Team, c.Size, *devArgs, f.Sessions, f.Probers, f.Paced, f.Burst, len(f.Runs)), "weft-loadtest bigteam "+strings.Join(args, " "))
	r.Print(stdout)
	if *out == "" {
		return nil
	}
	if err := r.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  report: %s\n", filepath.Join(*out, "bigteam.json"))
	return nil
}
