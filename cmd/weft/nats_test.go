package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/cli/clitest"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/pubsub"
)

const testSecret = "s3cret-s3cret-s3cret-s3cret-s3cret"

// TestEdgeWithoutNATSRefuses: `weft edge` without --nats does not start a NATS of its own that
// would never see the origin's events: it exits 2 with an error naming --nats and
// --embedded-nats and saying why, and starts nothing (no listener printed).
func TestEdgeWithoutNATSRefuses(t *testing.T) {
	t.Setenv("WEFT_NATS", "") // whatever the test's environment holds
	r := clitest.Run(t, "edge", "--addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--token-secret", testSecret)
	if r.Code != 2 || !strings.Contains(r.Stderr, "--nats") || !strings.Contains(r.Stderr, "--embedded-nats") ||
		!strings.Contains(r.Stderr, "never see the origin's events") || r.Stdout != "" {
		t.Errorf("edge without --nats: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = clitest.Run(t, "edge", "--embedded-nats", "--nats", "nats://127.0.0.1:1", "--token-secret", testSecret)
	if r.Code != 2 || !strings.Contains(r.Stderr, "--embedded-nats and --nats") {
		t.Errorf("edge with --embedded-nats and --nats: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestNATSFlagsValidated: every command's NATS flags are checked before any connection (the
// --nats given answers nothing: a command that connected first would retry until killed), each
// error naming its flag, also when the value comes from its environment twin, which never
// shows a password.
func TestNATSFlagsValidated(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WEFT_TOKEN_SECRET", testSecret) // the edge and proxy's, which origin has not
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"edge", "--nats", "nats://a b:4222"}, "--nats"},
		{[]string{"edge", "--nats", "nats://127.0.0.1:1", "--nats-ca", dir + "/nosuch.pem"}, "--nats-ca"},
		{[]string{"origin", "--nats", "nats://127.0.0.1:1", "--nats-creds", dir + "/nosuch.creds"}, "--nats-creds"},
		{[]string{"origin", "--nats-nkey", dir + "/nosuch.nk"}, "--nats-nkey"}, // and no embedded server started
		{[]string{"dev", "--nats", "nats://127.0.0.1:1", "--nats-key", dir + "/key.pem"}, "--nats-key"},
		{[]string{"proxy", "--nats", "nats://127.0.0.1:1", "--nats-user", "weft"}, "--nats-user"},
	}
	for _, c := range cases {
		r := clitest.Run(t, c.args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "weft: "+c.flag+":") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and an error naming %s", c.args, r.Code, r.Stderr, c.flag)
		}
	}
	t.Setenv("WEFT_NATS_PASSWORD", "hunter2-hunter2")
	r := clitest.Run(t, "edge", "--nats", "nats://127.0.0.1:1")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--nats-password: needs --nats-user") || strings.Contains(r.Stderr, "hunter2") {
		t.Errorf("WEFT_NATS_PASSWORD without a user: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestEdgeMetricsShowNATS runs `weft edge` on a NATS of its own (--embedded-nats: it creates
// the stream there) and on an external one (--nats, where the stream's owner created it), and
// reads the NATS connection's metrics on its /metrics.
func TestEdgeMetricsShowNATS(t *testing.T) {
	t.Setenv("WEFT_NATS", "")
	emb := backend.ListeningNATS(t)
	backend.Bus(t, emb, pubsub.Config{}) // the stream's owner: it creates the stream
	for name, args := range map[string][]string{
		"embedded": {"--embedded-nats", "--nats-addr", "127.0.0.1:0"},
		"external": {"--nats", emb.ClientURL()},
	} {
		t.Run(name, func(t *testing.T) {
			base, stop := startEdge(t, args...)
			defer stop()
			m := get(t, base+"/metrics")
			for _, want := range []string{"\nweft_nats_connected 1\n", "\nweft_nats_reconnects_total 0\n", "\nweft_nats_pending_bytes ",
				"\nweft_nats_slow_consumers_total 0\n", "\nweft_nats_msgs_total{direction=\"in\"} "} {
				if !strings.Contains(m, want) {
					t.Errorf("the edge's /metrics has no %q", strings.TrimSpace(want))
				}
			}
		})
	}
}

// startEdge runs `weft edge` in this process with args until stop, which waits for it to end.
// It returns the edge's operator listener.
func startEdge(t *testing.T, args ...string) (base string, stop func()) {
	t.Helper()
	_, base, stop = startEdgeURLs(t, args...)
	return base, stop
}

// startEdgeURLs is startEdge that also returns the edge's client URL.
func startEdgeURLs(t testing.TB, args ...string) (clientURL, base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"edge", "--addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0", "--token-secret", testSecret, "--drain", "100ms",
			"--log-level", "error"}, args...), &out)
	}()
	stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("weft edge stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("weft edge did not stop after its context ended")
		}
	}
	listening := regexp.MustCompile(`weft edge \S+ ops: (http://\S+)`) // the operator listener, printed after the client port
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("weft edge exited early: %v\n%s", err, out.String())
		default:
		}
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		return base != ""
	}, "weft edge to listen")
	m := regexp.MustCompile(`weft edge \S+: (http://\S+) \(origin`).FindStringSubmatch(out.String())
	testkit.True(t, m != nil, "weft edge printed its client URL:\n%s", out.String())
	return m[1], base, stop
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	testkit.OK(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	testkit.OK(t, err)
	http.DefaultClient.CloseIdleConnections()
	return string(body)
}
