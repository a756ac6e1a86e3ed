// Command weft runs weft's processes: an edge node (weft edge), a proxy that routes each
// team's clients to the edge that owns it (weft proxy), the reference origin (weft origin),
// and, for development, all of them in one process with an embedded NATS (weft dev); weft
// token prints a client token. The load generator is a command of its own, cmd/weft-loadtest,
// so that its plotting code stays out of the servers; cmd/weft-proxy is `weft proxy` alone,
// without the edge, the origin or the embedded NATS server. Every flag has an environment twin:
// --page-limit is WEFT_PAGE_LIMIT.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/opscmd"
	"github.com/weft-edge/weft/internal/proxycmd"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"dev", "run everything on one machine: embedded NATS, the reference origin, an edge", runDev},
	{"edge", "run an edge node", runEdge},
	{"proxy", proxycmd.Summary, runProxy},
	{"origin", "run the reference origin: a synthetic world, live events on NATS, fault injection", runOrigin},
	{"token", "print a client token (JWT) for a user in a team", runToken},
	{"health", opscmd.HealthSummary, func(ctx context.Context, args []string, stdout io.Writer) error {
		return opscmd.RunHealth(ctx, weft, args, stdout)
	}},
	{"drain", opscmd.DrainSummary, func(ctx context.Context, args []string, stdout io.Writer) error {
		return opscmd.RunDrain(ctx, weft, args, stdout)
	}},
	{"version", opscmd.VersionSummary, func(ctx context.Context, args []string, stdout io.Writer) error {
		return opscmd.RunVersion(ctx, weft, args, stdout)
	}},
}

// weft is this binary's command line: its flags' environment twins, help and exit status.
var weft = cli.Program{Name: "weft"}

func main() { weft.Main(run) }

// runProxy is `weft proxy`, the same command as the proxy-only binary cmd/weft-proxy.
func runProxy(ctx context.Context, args []string, stdout io.Writer) error {
	return proxycmd.Run(ctx, weft, "proxy", args, stdout)
}

// run runs the command args name. The help asked for (no command, or help, -h, --help) goes
// to stdout; an unknown command is bad usage, with the commands listed on stderr.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || cli.IsHelp(args[0]) {
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout)
		}
	}
	usage(os.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: weft <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'weft <command> -h' for its flags; every flag has a WEFT_<NAME> environment twin.")
}
