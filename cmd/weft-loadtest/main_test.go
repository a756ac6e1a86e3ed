package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-edge/weft/internal/cli/clitest"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/loadtest"
)

func TestMain(m *testing.M) {
	clitest.Init(main) // a child of clitest.Run: be the command, not the tests
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		weft.Remove()
		os.Exit(code)
	}))
}

// weft is the weft binary of this test run, built by the first test that needs it.
var weft = testkit.Built{Build: loadtest.Build}

func weftBin(t *testing.T) string {
	t.Helper()
	return weft.Path(t)
}

// TestHelpExitsZero: the help asked for, of weft-loadtest or of any scenario, with -h or
// --help, goes to stdout and exits 0.
func TestHelpExitsZero(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		r := clitest.Run(t, arg)
		if r.Code != 0 || !strings.Contains(r.Stdout, "usage: weft-loadtest <scenario>") || !strings.Contains(r.Stdout, "go build -o bin/ ./cmd/...") || r.Stderr != "" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", arg, r.Code, r.Stdout, r.Stderr)
		}
	}
	for _, name := range []string{"boot", "query", "typing", "fanout", "capacity", "regions", "storm", "all"} {
		for _, arg := range []string{"-h", "--help"} {
			r := clitest.Run(t, name, arg)
			if r.Code != 0 || !strings.Contains(r.Stdout, "usage: weft-loadtest "+name+" [flags]") || !strings.Contains(r.Stdout, "--weft [WEFT_BIN]") || r.Stderr != "" {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", name, arg, r.Code, r.Stdout, r.Stderr)
			}
		}
	}
}

// TestBadUsageExitsTwo: bad usage exits 2, with the error on stderr and nothing on stdout.
func TestBadUsageExitsTwo(t *testing.T) {
	for _, args := range [][]string{nil, {"nosuch"}, {"boot", "--nosuchflag"}, {"boot", "extra"}, {"storm", "--clients", "many"}} {
		r := clitest.Run(t, args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "weft-loadtest:") || r.Stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// TestDefaultOut checks that reports go to the repository's results folder unless --out says
// otherwise: results/<scenario> for one scenario, results/ (RESULTS.md) for all.
func TestDefaultOut(t *testing.T) {
	for name, want := range map[string]string{"boot": "results/boot", "capacity": "results/capacity", "all": "results"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{name, "-h"}, &out); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s -h: %v", name, err)
		}
		if line := fmt.Sprintf("--out [WEFT_OUT] (default %q)", want); !strings.Contains(out.String(), line) {
			t.Errorf("%s: no %s in\n%s", name, line, out.String())
		}
	}
}

// executable writes an empty executable file at path.
func executable(t *testing.T, path string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFindWeft(t *testing.T) {
	beside, onPath, empty := t.TempDir(), t.TempDir(), t.TempDir()
	self := executable(t, filepath.Join(beside, "weft-loadtest"))
	besideWeft := executable(t, filepath.Join(beside, "weft"))
	pathWeft := executable(t, filepath.Join(onPath, "weft"))
	given := executable(t, filepath.Join(t.TempDir(), "my-weft"))

	t.Setenv("PATH", onPath)
	for _, c := range []struct{ name, given, self, want string }{
		{"--weft wins", given, self, given},
		{"beside this executable", "", self, besideWeft},
		{"then PATH", "", filepath.Join(empty, "weft-loadtest"), pathWeft},
		{"PATH when this executable is unknown", "", "", pathWeft},
	} {
		got, err := findWeft(c.given, c.self)
		if err != nil || got != c.want {
			t.Errorf("%s: findWeft(%q, %q) = %q, %v; want %q", c.name, c.given, c.self, got, err, c.want)
		}
	}

	if _, err := findWeft(filepath.Join(empty, "weft"), self); err == nil || !strings.Contains(err.Error(), "go build -o bin/ ./cmd/...") {
		t.Errorf("a missing --weft: %v", err)
	}
	t.Setenv("PATH", empty)
	_, err := findWeft("", filepath.Join(empty, "weft-loadtest"))
	if err == nil || !strings.Contains(err.Error(), "no weft binary") || !strings.Contains(err.Error(), "go build -o bin/ ./cmd/...") {
		t.Errorf("no weft anywhere: %v", err)
	}
}

// TestWeftFromEnvironment checks --weft's twin WEFT_BIN: a scenario that must spawn fails on
// the binary the variable names, before it starts anything.
func TestWeftFromEnvironment(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-weft-here")
	t.Setenv("WEFT_BIN", missing)
	err := run(context.Background(), []string{"boot", "--spawn", "--out", ""}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("WEFT_BIN was not used: %v", err)
	}
}

// TestBootAgainstSpawnedWeft runs a scenario end to end: weft-loadtest starts `weft dev` from
// the weft binary it is given, boots a few clients and writes the report.
func TestBootAgainstSpawnedWeft(t *testing.T) {
	bin := weftBin(t)
	out := t.TempDir()
	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := run(ctx, []string{"boot", "--spawn", "--size", "tiny", "--users", "3", "--eager", "1",
		"--weft", bin, "--out", out, "--progress=false", "--log-level", "warn"}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "boot.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Scenario, Command string
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Scenario != "boot" || !strings.HasPrefix(r.Command, "weft-loadtest boot --spawn") {
		t.Fatalf("report %+v", r)
	}
	if !strings.Contains(stdout.String(), "report: "+filepath.Join(out, "boot.json")) {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
}
