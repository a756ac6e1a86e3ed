// Command weft runs weft's processes: an edge node (weft edge), a proxy that routes each
// team's clients to the edge that owns it (weft proxy), the reference origin (weft origin),
// and, for development, all of them in one process with an embedded NATS (weft dev); weft
// token prints a client token. The load generator is a command of its own, cmd/weft-loadtest,
// so that its plotting code stays out of the servers. Every flag has an environment twin:
// --page-limit is WEFT_PAGE_LIMIT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"dev", "run everything on one machine: embedded NATS, the reference origin, an edge", runDev},
	{"edge", "run an edge node", runEdge},
	{"proxy", "run a proxy: routes each team's clients to the edge that owns it", runProxy},
	{"origin", "run the reference origin: a synthetic world, live events on NATS, fault injection", runOrigin},
	{"token", "print a client token (JWT) for a user in a team", runToken},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "weft:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
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

// parse parses args into fs, then fills every flag not given on the command line from its
// environment twin (WEFT_ + the flag name upper-cased, '-' as '_'). A bad value in the
// environment is an error naming the variable.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func envName(flagName string) string {
	return "WEFT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet makes a flag set whose usage lists each flag with its environment twin.
func newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: weft %s [flags]\n\n%s\n\nflags (environment twin in brackets):\n", name, summary)
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		sort.Strings(names)
		for _, n := range names {
			f := fs.Lookup(n)
			fmt.Fprintf(out, "  --%s [%s] (default %q)\n      %s\n", n, envName(n), f.DefValue, f.Usage)
		}
	}
	return fs
}

// parseLogged adds --log-level and --log-format to fs, parses args (see parse) and returns the
// logger those flags ask for: every long-running command starts this way.
func parseLogged(fs *flag.FlagSet, args []string) (*slog.Logger, error) {
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch *format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", *format)
}
