package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var weft = Program{Name: "weft", Env: map[string]string{"weft": "WEFT_BIN"}}

// unsetEnv makes sure the variables are unset for the test, and restored after it.
func unsetEnv(t *testing.T, names ...string) {
	for _, name := range names {
		t.Setenv(name, "") // restores the old value when the test ends
		os.Unsetenv(name)
	}
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{"page-limit": "WEFT_PAGE_LIMIT", "addr": "WEFT_ADDR", "weft": "WEFT_BIN"} {
		if got := weft.EnvName(flagName); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

// testFlags is a command with a flag of each kind the environment fills.
func testFlags() (*flag.FlagSet, *int, *time.Duration, *string) {
	fs := weft.NewFlagSet("edge", "Run an edge node.")
	return fs, fs.Int("page-limit", 5000, "page size"), fs.Duration("grace", time.Minute, "grace"), fs.String("weft", "", "binary")
}

func TestParseFillsUnsetFlagsFromTheEnvironment(t *testing.T) {
	t.Setenv("WEFT_PAGE_LIMIT", "77")
	t.Setenv("WEFT_GRACE", "3s")
	t.Setenv("WEFT_BIN", "/opt/weft")
	fs, limit, grace, bin := testFlags()
	if err := weft.Parse(fs, []string{"--grace", "9s"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if *limit != 77 || *bin != "/opt/weft" {
		t.Errorf("--page-limit %d, --weft %q: want 77 and /opt/weft from WEFT_PAGE_LIMIT and WEFT_BIN", *limit, *bin)
	}
	if *grace != 9*time.Second {
		t.Errorf("--grace %v: the command line's 9s should win over WEFT_GRACE", *grace)
	}
}

// TestGiven: a flag is given by the command line or by its environment twin, not by its default.
func TestGiven(t *testing.T) {
	unsetEnv(t, "WEFT_PAGE_LIMIT", "WEFT_GRACE")
	t.Setenv("WEFT_BIN", "/opt/weft")
	fs, _, _, _ := testFlags()
	if err := weft.Parse(fs, []string{"--grace", "9s"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"grace": true, "weft": true, "page-limit": false} {
		if got := weft.Given(fs, name); got != want {
			t.Errorf("Given(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseNamesTheBadVariable(t *testing.T) {
	unsetEnv(t, "WEFT_GRACE", "WEFT_BIN")
	t.Setenv("WEFT_PAGE_LIMIT", "lots")
	fs, _, _, _ := testFlags()
	err := weft.Parse(fs, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `WEFT_PAGE_LIMIT="lots"`) {
		t.Fatalf("a bad environment value should name its variable: %v", err)
	}
	// Given on the command line, the flag leaves its twin unread.
	fs, limit, _, _ := testFlags()
	if err := weft.Parse(fs, []string{"--page-limit", "3"}, &bytes.Buffer{}); err != nil || *limit != 3 {
		t.Fatalf("--page-limit 3 with a bad WEFT_PAGE_LIMIT: %d, %v", *limit, err)
	}
}

func TestParseRefusesArguments(t *testing.T) {
	unsetEnv(t, "WEFT_PAGE_LIMIT", "WEFT_GRACE", "WEFT_BIN")
	fs, _, _, _ := testFlags()
	if err := weft.Parse(fs, []string{"--grace", "1s", "extra"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("a stray argument: %v", err)
	}
	fs, _, _, _ = testFlags()
	var stdout bytes.Buffer
	if err := weft.Parse(fs, []string{"--nosuch"}, &stdout); err == nil || errors.Is(err, flag.ErrHelp) || stdout.Len() != 0 {
		t.Fatalf("an unknown flag: %v; stdout %q", err, stdout.String())
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		fs, _, _, _ := testFlags()
		var stdout bytes.Buffer
		err := weft.Parse(fs, []string{arg}, &stdout)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: %v, want flag.ErrHelp", arg, err)
		}
		for _, want := range []string{"usage: weft edge [flags]", "Run an edge node.", `--page-limit [WEFT_PAGE_LIMIT] (default "5000")`, "--weft [WEFT_BIN]"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: no %q in\n%s", arg, want, stdout.String())
			}
		}
		if code := weft.Exit(err, &bytes.Buffer{}); code != 0 {
			t.Errorf("%s: exit %d, want 0", arg, code)
		}
	}
}

// TestSingleCommandProgram: a program that is one command (NewFlagSet with no command name)
// names itself alone, in its usage line and in the error for a stray argument.
func TestSingleCommandProgram(t *testing.T) {
	p := Program{Name: "weft-proxy"}
	var stdout bytes.Buffer
	if err := p.Parse(p.NewFlagSet("", "Run a proxy."), []string{"-h"}, &stdout); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	if !strings.HasPrefix(stdout.String(), "usage: weft-proxy [flags]\n") {
		t.Errorf("-h: usage %q, want it to start with \"usage: weft-proxy [flags]\"", stdout.String())
	}
	err := p.Parse(p.NewFlagSet("", "Run a proxy."), []string{"extra"}, &bytes.Buffer{})
	var stderr bytes.Buffer
	p.Exit(err, &stderr)
	if want := "weft-proxy: unexpected arguments [\"extra\"]\n"; stderr.String() != want {
		t.Errorf("a stray argument: %q, want %q", stderr.String(), want)
	}
}

func TestExit(t *testing.T) {
	var stderr bytes.Buffer
	if code := weft.Exit(nil, &stderr); code != 0 || stderr.Len() != 0 {
		t.Errorf("success: exit %d, stderr %q", code, stderr.String())
	}
	if code := weft.Exit(errors.New("unknown command \"x\""), &stderr); code != ExitUsage || stderr.String() != "weft: unknown command \"x\"\n" {
		t.Errorf("an error: exit %d, stderr %q", code, stderr.String())
	}
}

func TestParseLogged(t *testing.T) {
	unsetEnv(t, "WEFT_LOG_LEVEL", "WEFT_LOG_FORMAT", "WEFT_PAGE_LIMIT", "WEFT_GRACE", "WEFT_BIN")
	fs, _, _, _ := testFlags()
	log, err := weft.ParseLogged(fs, []string{"--log-level", "warn", "--log-format", "json"}, &bytes.Buffer{})
	if err != nil || log == nil || log.Enabled(t.Context(), -4) || !log.Enabled(t.Context(), 4) {
		t.Fatalf("--log-level warn: %v, %v", log, err)
	}
	for _, args := range [][]string{{"--log-level", "loud"}, {"--log-format", "xml"}} {
		fs, _, _, _ := testFlags()
		if _, err := weft.ParseLogged(fs, args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%q: %v, want an error naming %s", args, err, args[0])
		}
	}
}

func TestIsHelp(t *testing.T) {
	for arg, want := range map[string]bool{"help": true, "-h": true, "--help": true, "-help": true, "edge": false, "": false, "--h": false} {
		if IsHelp(arg) != want {
			t.Errorf("IsHelp(%q) = %v", arg, !want)
		}
	}
}
