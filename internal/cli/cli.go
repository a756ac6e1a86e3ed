// Package cli is the command-line convention weft's binaries share (cmd/weft, cmd/weft-proxy
// and cmd/weft-loadtest), so that an operator meets one: every flag has an environment twin
// (WEFT_ + the flag name upper-cased, '-' as '_'), a subcommand's -h prints its flags with
// their twins on stdout and exits 0, and bad usage exits 2 with the error on stderr.
package cli

import (
	"bytes"
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

// ExitUsage is the exit status of a command that failed: bad usage, or a run that stopped on
// an error. Help asked for (-h) exits 0.
const ExitUsage = 2

// Program is one binary's command line.
type Program struct {
	// Name is the binary's name, as usage lines and error messages spell it.
	Name string
	// Env names the environment twins that are not WEFT_ + the flag's name, where that name
	// would say nothing (weft-loadtest's --weft is WEFT_BIN, not WEFT_WEFT).
	Env map[string]string
}

// EnvName is the environment twin of the flag named flagName.
func (p Program) EnvName(flagName string) string {
	if v, ok := p.Env[flagName]; ok {
		return v
	}
	return "WEFT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Given says whether the command line or the flag's environment twin gave flag name a value:
// for a default that depends on another flag (weft dev's --rate is 0 with --postgres, unless
// given).
func (p Program) Given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	_, env := os.LookupEnv(p.EnvName(name))
	return set || env
}

// NewFlagSet makes the flag set of one command, whose usage says what the command does and
// lists each flag with its environment twin. An empty command is a program that is a single
// command (weft-proxy): its usage line is the program's name alone.
func (p Program) NewFlagSet(command, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	invocation := p.Name
	if command != "" {
		invocation += " " + command
	}
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: %s [flags]\n\n%s\n\nflags (environment twin in brackets):\n", invocation, summary)
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		sort.Strings(names)
		for _, n := range names {
			f := fs.Lookup(n)
			fmt.Fprintf(out, "  --%s [%s] (default %q)\n      %s\n", n, p.EnvName(n), f.DefValue, f.Usage)
		}
	}
	return fs
}

// Parse parses args into fs, then fills every flag not given on the command line from its
// environment twin; a bad value in the environment is an error naming the variable. The help
// asked for with -h goes to stdout and Parse returns flag.ErrHelp (see Exit); the usage the
// flag package prints for a bad flag goes to stderr.
func (p Program) Parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var msg bytes.Buffer
	fs.SetOutput(&msg)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		_, _ = stdout.Write(msg.Bytes())
		return err
	}
	_, _ = os.Stderr.Write(msg.Bytes())
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		if fs.Name() == "" { // the program's own flags: Exit's prefix names it already
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := p.EnvName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// ParseLogged adds --log-level and --log-format to fs, parses args (see Parse) and returns
// the logger, on stderr, those flags ask for: every long-running command starts this way.
func (p Program) ParseLogged(fs *flag.FlagSet, args []string, stdout io.Writer) (*slog.Logger, error) {
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := p.Parse(fs, args, stdout); err != nil {
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

// IsHelp reports whether arg, in a command's place, asks for the program's help.
func IsHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// Main runs run on the process's arguments, with a context that ends on SIGINT or SIGTERM,
// and exits with the status Exit gives.
func (p Program) Main(run func(ctx context.Context, args []string, stdout io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(p.Exit(err, os.Stderr))
}

// Exit is the exit status of a run that returned err: 0 when it succeeded or stopped at the
// help it was asked for (flag.ErrHelp: the help is printed, and is what was wanted), else
// ExitUsage after the error, prefixed with the program's name, on stderr.
func (p Program) Exit(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
	return ExitUsage
}
