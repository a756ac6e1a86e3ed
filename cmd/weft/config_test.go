package main

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/weft-edge/weft/internal/cli/clitest"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/pubsub"
)

// TestConfigCheckedUpFront: what an operator can get wrong in a flag is an error at start that
// names the flag, before any connection: the --nats given answers nothing, so a command that
// connected first would retry until the test's minute is up. Files named by TLS flags are
// read then too.
func TestConfigCheckedUpFront(t *testing.T) {
	t.Setenv("WEFT_TOKEN_SECRET", testSecret)
	dir := t.TempDir()
	const nowhere = "nats://127.0.0.1:1"
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	testkit.OK(t, err)
	defer taken.Close()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"edge", "--nats", nowhere, "--addr", ":8080"}, "pass --advertise"},
		{[]string{"edge", "--nats", nowhere, "--addr", "0.0.0.0:8080"}, "pass --advertise"},
		{[]string{"edge", "--nats", nowhere, "--addr", "[::]:8080"}, "pass --advertise"},
		{[]string{"edge", "--nats", nowhere, "--addr", ":0", "--advertise", "0.0.0.0:8080"}, "--advertise: "},
		{[]string{"edge", "--nats", nowhere, "--addr", ":0", "--advertise", "edge-1:0"}, "--advertise: "},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1"}, "--addr: "},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--memory-budget", "1KiB"}, "--memory-budget: "},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--memory-budget", "lots"}, "--memory-budget: "},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--origin", "ftp://origin"}, "--origin: "},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--origin-ca", dir + "/ca.pem"}, "--origin-ca and --origin-cert need an https://"},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--tls-cert", dir + "/c.pem"}, "--tls-cert, --tls-key: "},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--tls-cert", dir + "/c.pem", "--tls-key", dir + "/k.pem", "--peer-tls"}, dir + "/c.pem"},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--peer-ca", dir + "/ca.pem"}, "need --peer-tls"},
		{[]string{"edge", "--nats", nowhere, "--addr", "127.0.0.1:0", "--tls-cert", dir + "/c.pem", "--tls-key", dir + "/k.pem"}, "--tls-cert without --peer-tls"},
		{[]string{"proxy", "--nats", nowhere, "--addr", "127.0.0.1"}, "--addr: "},
		{[]string{"proxy", "--nats", nowhere, "--tls-cert", dir + "/c.pem", "--tls-key", dir + "/k.pem"}, dir + "/c.pem"},
		{[]string{"proxy", "--nats", nowhere, "--edge-tls", "--edge-ca", dir + "/ca.pem"}, "--edge-ca: "},
		{[]string{"origin", "--nats", nowhere, "--addr", "origin"}, "--addr: "},
		{[]string{"origin", "--nats", nowhere, "--tls-cert", dir + "/c.pem", "--tls-key", dir + "/k.pem"}, dir + "/c.pem"},
		// The embedded NATS server's port taken: said at once, not after the server's 10 s wait.
		{[]string{"origin", "--nats-addr", taken.Addr().String()}, "--nats-addr " + taken.Addr().String()},
		{[]string{"health", "--url", "127.0.0.1:9090/readyz"}, "--url: "},
		{[]string{"drain", "--timeout", "0s"}, "--timeout: "},
	}
	for _, c := range cases {
		r := clitest.Run(t, c.args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, r.Code, r.Stderr, c.want)
		}
	}
}

// TestVersionCommand: weft version says the build, exits 0, and the edge's metrics carry the
// same in weft_build_info.
func TestVersionCommand(t *testing.T) {
	r := clitest.Run(t, "version")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "weft ") || !strings.Contains(r.Stdout, runtime.Version()) {
		t.Errorf("weft version: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// TestDrainCommand: weft drain asks an edge on its operator listener to drain and returns once
// it has; the edge then says it is not ready, and goes on running until it is stopped.
func TestDrainCommand(t *testing.T) {
	t.Setenv("WEFT_NATS", "")
	emb := backend.ListeningNATS(t)
	backend.Bus(t, emb, pubsub.Config{}) // the stream's owner: it creates the stream
	ops, stop := startEdge(t, "--nats", emb.ClientURL())
	defer stop()
	m := get(t, ops+"/metrics")
	testkit.True(t, strings.Contains(m, `weft_build_info{commit="`) && strings.Contains(m, `go_version="`+runtime.Version()+`"`),
		"the edge's weft_build_info:\n%.3000s", m)
	testkit.Equal(t, get(t, ops+"/readyz"), "ready\n", "readiness before the drain")
	// A bare POST, as a page of another site could send, drains nothing.
	resp, err := http.Post(ops+"/drain", "text/plain", nil)
	testkit.OK(t, err)
	resp.Body.Close()
	testkit.Equal(t, resp.StatusCode, http.StatusForbidden, "a POST /drain without its header")
	testkit.Equal(t, get(t, ops+"/readyz"), "ready\n", "readiness after a refused drain")

	var out testkit.SyncBuffer
	testkit.OK(t, run(context.Background(), []string{"drain", "--ops-url", ops}, &out))
	testkit.True(t, strings.HasPrefix(out.String(), "drained in "), "weft drain printed %q", out.String())
	resp, err = http.Get(ops + "/readyz")
	testkit.OK(t, err)
	resp.Body.Close()
	testkit.Equal(t, resp.StatusCode, http.StatusServiceUnavailable, "readiness after the drain")
	// A second drain (a preStop hook retried) finds nothing left and says so at once.
	out = testkit.SyncBuffer{}
	testkit.OK(t, run(context.Background(), []string{"drain", "--ops-url", ops}, &out))
	http.DefaultClient.CloseIdleConnections()
}
