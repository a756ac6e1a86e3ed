// Command weft-loadtest is weft's load generator: it runs real clients against weft processes
// on this machine and reports what they measured (the scenarios are package loadtest). It is a
// command of its own, not part of the weft binary, so that the servers carry none of its
// plotting and PDF code. The stacks it starts run a weft binary (--weft, see findWeft); its
// client worker processes are this binary re-executed (`weft-loadtest storm-worker`).
//
//	go build -o bin/ ./cmd/...    # bin/weft and bin/weft-loadtest side by side
//	bin/weft-loadtest boot --spawn
//
// Every flag has an environment twin, as weft's do: --out is WEFT_OUT, and --weft is WEFT_BIN.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/loadtest"
)

// weftLoadtest is this binary's command line, weft's convention (internal/cli): every flag has
// an environment twin, WEFT_ + its name, and -h lists both. --weft is WEFT_BIN: WEFT_WEFT would
// say nothing.
var weftLoadtest = cli.Program{Name: "weft-loadtest", Env: map[string]string{"weft": "WEFT_BIN"}}

func main() { weftLoadtest.Main(run) }

// usageText is the help of weft-loadtest itself; each scenario's -h lists its flags.
const usageText = `usage: weft-loadtest <scenario> [flags]

Runs real clients against weft on this machine and reports what they measured: a table on the
terminal, and <scenario>.json with PNG plots in --out (default results/<scenario>).

scenarios:
  boot      N users boot: weft's lazy boot against the eager team snapshot
  query     users.info, channels.members and users.channels at a fixed rate, edge vs origin
  typing    the Quick Switcher: one autocomplete per keystroke, at several typing speeds
  fanout    live events to C sessions of one team: publish-to-deliver latency, deliveries/s
  capacity  one edge, clients in worker processes: memory per connection, CPU, queries per core
  regions   edge regions: latency per region, near it and across the WAN to home; cold loads
  bigteam   10,000 sessions of one team on weft and on a centrifuge server: latency, CPU, memory
  storm     the reconnect storm: origin, edges and proxies as processes, an edge SIGKILLed
  fronts    weft's proxy against nginx (hash consistent): setup, round trip, RSS, an edge lost
  all       every scenario but storm, each on a stack of its own, and results/RESULTS.md

A scenario runs against a stack given by URL (--target, --origin, --team) or one it starts
(--spawn: ` + "`weft dev`" + ` in a child process); storm and all always start their own. Those
stacks run a weft binary: --weft PATH (WEFT_BIN), else the weft next to this executable, else
weft on PATH. Build both with:

  go build -o bin/ ./cmd/...

Run 'weft-loadtest <scenario> -h' for its flags; every flag has a WEFT_<NAME> environment twin.
`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usageText)
		return errors.New("want a scenario")
	}
	if cli.IsHelp(args[0]) {
		fmt.Fprint(stdout, usageText)
		return nil
	}
	switch args[0] {
	case loadtest.WorkerCommand: // a client process of storm and capacity; reads its plan on stdin
		return loadtest.RunStormWorker(ctx, os.Stdin, stdout)
	case loadtest.CheapWorkerCommand: // a cheap-client process of bigteam
		return loadtest.RunCheapWorker(ctx, os.Stdin, stdout)
	case loadtest.CentrifugeCommand: // bigteam's peer server
		return loadtest.RunCentrifugeServer(ctx, os.Stdin, stdout)
	case loadtest.RelayCommand: // the fronts scenario's plain TCP relay: its upstream is the argument
		if len(args) != 2 {
			return fmt.Errorf("%s: want one argument, the upstream address", loadtest.RelayCommand)
		}
		return loadtest.RunRelay(ctx, args[1], stdout)
	case "bigteam":
		return runBigTeam(ctx, args[1:], stdout)
	case "storm":
		return runStorm(ctx, args[1:], stdout)
	case "fronts":
		return runFronts(ctx, args[1:], stdout)
	case "all":
		return runAll(ctx, args[1:], stdout)
	}
	if sc := findScenario(args[0]); sc != nil {
		return runScenario(ctx, sc, args[1:], stdout)
	}
	fmt.Fprint(os.Stderr, usageText)
	return fmt.Errorf("unknown scenario %q", args[0])
}
