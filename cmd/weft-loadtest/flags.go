package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The flags follow cmd/weft's convention, so that an operator meets one: every flag has an
// environment twin (WEFT_ + the flag name upper-cased, '-' as '_'), and -h lists both.

// parse parses args into fs, then fills every flag not given on the command line from its
// environment twin. A bad value in the environment is an error naming the variable. The help
// asked for with -h goes to stdout; the usage printed for a bad flag goes to stderr.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
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

// envName is a flag's environment twin. --weft is WEFT_BIN: WEFT_WEFT would say nothing.
func envName(flagName string) string {
	if flagName == "weft" {
		return "WEFT_BIN"
	}
	return "WEFT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet makes a flag set whose usage lists each flag with its environment twin.
func newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: weft-loadtest %s [flags]\n\n%s\n\nflags (environment twin in brackets):\n", name, summary)
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
// logger those flags ask for.
func parseLogged(fs *flag.FlagSet, args []string, stdout io.Writer) (*slog.Logger, error) {
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := parse(fs, args, stdout); err != nil {
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

// weftFlag adds --weft, the weft binary the stacks run (see findWeft).
func weftFlag(fs *flag.FlagSet) *string {
	return fs.String("weft", "", "the weft binary the stacks run (weft dev, origin, edges, proxies); empty: the weft next to this executable, else weft on PATH")
}

// buildHint says how to get a weft binary where findWeft looks for one.
const buildHint = "build one with `go build -o bin/ ./cmd/...` (bin/weft beside bin/weft-loadtest) or pass --weft PATH (WEFT_BIN)"

// findWeft returns the weft binary to run: given (--weft) when set, else the weft in the
// directory of self (this executable: `go build -o bin/ ./cmd/...` puts the two side by side),
// else weft on PATH. It never falls back to self: weft-loadtest is not a server.
func findWeft(given, self string) (string, error) {
	if given != "" {
		p, err := exec.LookPath(given) // a path is checked as is; a bare name is looked up on PATH
		if err != nil {
			return "", fmt.Errorf("--weft %s: %w; %s", given, err, buildHint)
		}
		return filepath.Abs(p)
	}
	if self != "" {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			if p, err := exec.LookPath(filepath.Join(filepath.Dir(real), "weft")); err == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("weft"); err == nil {
		return filepath.Abs(p)
	}
	where := "none on PATH"
	if self != "" {
		where = fmt.Sprintf("none in %s and none on PATH", filepath.Dir(self))
	}
	return "", fmt.Errorf("no weft binary to run (%s): %s", where, buildHint)
}

// weftBinary resolves --weft for this process (see findWeft).
func weftBinary(given string) (string, error) {
	self, _ := os.Executable() // "" if unknown: then only --weft and PATH count
	return findWeft(given, self)
}

// workerBinary is the program the client workers of storm and capacity run: this one, as
// `weft-loadtest storm-worker`.
func workerBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this executable for the client workers: %w", err)
	}
	return exe, nil
}

// parseBytes reads a size: plain bytes or with a suffix KiB, MiB, GiB (or KB, MB, GB, taken
// as the same powers of two). "" is 0. It reads what weft's --memory-budget reads.
func parseBytes(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 512MiB or 2GiB", v)
	}
	return int64(n * float64(mult)), nil
}
