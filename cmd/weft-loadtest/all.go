package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-edge/weft/loadtest"
)

// allStep is one scenario run of `weft-loadtest all`: on which world, with which flags, and
// where its report goes, relative to RESULTS.md.
type allStep struct {
	scenario, size, dir string
	args                []string
	keep                func(res *loadtest.Results, r *loadtest.Report)
}

// allSteps are the runs behind RESULTS.md. Each runs on a `weft dev` stack of its own, so that
// no scenario measures another's leftovers.
var allSteps = []allStep{
	{"boot", "1.5k", "boot-1.5k", []string{"--users", "200", "--eager", "20"},
		func(res *loadtest.Results, r *loadtest.Report) { res.BootSmall = r }},
	{"boot", "32k", "boot-32k", []string{"--users", "200", "--eager", "10"},
		func(res *loadtest.Results, r *loadtest.Report) { res.Boot32k = r }},
	{"boot", "giant", "boot-giant", []string{"--users", "100", "--eager", "3"},
		func(res *loadtest.Results, r *loadtest.Report) { res.BootGiant = r }},
	{"query", "small", "query", []string{"--origin-latency", "200ms"},
		func(res *loadtest.Results, r *loadtest.Report) { res.Query = r }},
	{"typing", "32k", "typing", nil,
		func(res *loadtest.Results, r *loadtest.Report) { res.Typing = r }},
	{"fanout", "32k", "fanout", nil,
		func(res *loadtest.Results, r *loadtest.Report) { res.Fanout = r }},
	{"capacity", "32k", "capacity", nil,
		func(res *loadtest.Results, r *loadtest.Report) { res.Capacity = r }},
}

// runAll runs every scenario but storm on spawned stacks and writes RESULTS.md.
func runAll(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weftLoadtest.NewFlagSet("all", "Every scenario but storm, each on a `weft dev` stack of its own (--spawn), and\n"+
		"RESULTS.md: the seed's headline figures beside this machine's, with every report and plot.")
	spawn := fs.Bool("spawn", false, "start the stacks (required: the scenarios need worlds of several sizes)")
	out := fs.String("out", "results", "directory for RESULTS.md and a directory per report, relative to the working directory")
	weft := weftFlag(fs)
	only := fs.String("only", "", "comma-separated scenarios to run (default: all of them); RESULTS.md has only those")
	timeout := fs.Duration("timeout", 45*time.Minute, "the whole run stops after this")
	if _, err := weftLoadtest.ParseLogged(fs, args, stdout); err != nil {
		return err
	}
	if !*spawn {
		return errors.New("all: --spawn is required (it starts a stack per world: 1.5k, 32k, giant, small)")
	}
	bin, err := weftBinary(*weft) // before the first scenario, not after a run of minutes
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("stopped by all's --timeout %v", *timeout))
	defer cancel()
	res := &loadtest.Results{Command: "weft-loadtest all " + strings.Join(args, " "), Dir: map[*loadtest.Report]string{}}
	start := time.Now()
	for _, st := range allSteps {
		if *only != "" && !strings.Contains(","+*only+",", ","+st.scenario+",") {
			continue
		}
		sc := findScenario(st.scenario)
		fsc, o, run := sc.flagSet(st.size)
		sargs := append([]string{"--spawn", "--size", st.size}, st.args...)
		if err := fsc.Parse(sargs); err != nil {
			return err
		}
		o.weft = bin
		fmt.Fprintf(os.Stderr, "weft-loadtest all: %s on %s\n", st.scenario, st.size)
		r, err := runOne(ctx, sc, run, o, "weft-loadtest "+sc.name+" "+strings.Join(sargs, " ")+" --out "+filepath.Join(*out, st.dir))
		if err != nil {
			return err
		}
		r.Print(stdout)
		if err := r.Write(filepath.Join(*out, st.dir)); err != nil { // kept even if a later step fails
			return err
		}
		st.keep(res, r)
		res.Dir[r] = st.dir
	}
	res.Took = time.Since(start)
	if err := res.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", filepath.Join(*out, "RESULTS.md"))
	return nil
}
