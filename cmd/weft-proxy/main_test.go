package main

import (
	"strings"
	"testing"

	"github.com/weft-edge/weft/internal/cli/clitest"
	"github.com/weft-edge/weft/internal/testkit"
)

func TestMain(m *testing.M) {
	clitest.Init(main) // a child of clitest.Run: be the command, not the tests
	testkit.VerifyTestMain(m)
}

// TestHelpExitsZero: -h and --help print weft-proxy's usage and the proxy's flags with their
// environment twins on stdout, and exit 0.
func TestHelpExitsZero(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		r := clitest.Run(t, arg)
		for _, want := range []string{"usage: weft-proxy [flags]", "--nats [WEFT_NATS]", "--token-secret [WEFT_TOKEN_SECRET]", "--edge-rate [WEFT_EDGE_RATE]", "--ops-addr [WEFT_OPS_ADDR]"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("%s: no %q in stdout %q", arg, want, r.Stdout)
			}
		}
		if r.Code != 0 || r.Stderr != "" {
			t.Errorf("%s: exit %d, stderr %q", arg, r.Code, r.Stderr)
		}
	}
}

// TestBadUsageExitsTwo: bad usage exits 2 with the error, named weft-proxy, on stderr.
func TestBadUsageExitsTwo(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"--nosuchflag"}, {"--edge-rate", "fast"}} {
		r := clitest.Run(t, args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "weft-proxy: ") || r.Stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// TestOperatorCommands: version prints the build and exits 0; health (a container's health
// check) exits 2 with why when nothing answers, and version -h is help.
func TestOperatorCommands(t *testing.T) {
	r := clitest.Run(t, "version")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "weft-proxy ") || !strings.Contains(r.Stdout, "commit") {
		t.Errorf("version: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = clitest.Run(t, "health", "--url", "http://127.0.0.1:1/readyz")
	if r.Code != 2 || !strings.Contains(r.Stderr, "127.0.0.1:1") {
		t.Errorf("health of nothing: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = clitest.Run(t, "version", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "usage: weft-proxy version") {
		t.Errorf("version -h: exit %d, stdout %q", r.Code, r.Stdout)
	}
}
