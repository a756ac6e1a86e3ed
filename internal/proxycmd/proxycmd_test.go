package proxycmd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend" // the embedded NATS server, for the test only
)

// TestRunHearsEdgesAndLeavesTheStreamAlone runs the proxy command against a NATS with
// JetStream: it puts an edge that announces itself there in its ring, and it creates no
// stream (the events stream is the edges' and the origin's to set up, with their limits).
func TestRunHearsEdgesAndLeavesTheStreamAlone(t *testing.T) {
	emb := backend.ListeningNATS(t)
	nc := backend.Conn(t, emb)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cli.Program{Name: "weft"}, "proxy", []string{"--addr", "127.0.0.1:0", "--token-secret", "a test secret of at least 16 bytes",
			"--nats", emb.ClientURL(), "--ops-addr", "127.0.0.1:0", "--log-level", "error"}, &out)
	}()
	stopped := false
	defer func() { // whatever fails, the proxy stops before the NATS server does
		if !stopped {
			cancel()
			<-done
		}
	}()

	listening := regexp.MustCompile(`(?m)^weft proxy ops: (http://\S+)$`) // its operator listener
	an := ring.Announcements{Conn: nc}
	edge := ring.Announcement{Node: "edge-1", Addr: "127.0.0.1:9", State: ring.EdgeServing, Admitting: true,
		IntervalMS: 1000, Started: time.Now()}
	var base string
	testkit.EventuallyOr(t, 20*time.Second, func() bool {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("the proxy exited early: %v; stdout %q", err, out.String())
		default:
		}
		if base == "" {
			if m := listening.FindStringSubmatch(out.String()); m != nil {
				base = m[1]
			}
			return false
		}
		// Announce until heard: the proxy may subscribe after an announcement, as it may
		// start after an edge, and then hears the edge's next one.
		if err := an.Announce(edge); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(metrics(t, base), "\nweft_proxy_ring_edges 1\n")
	}, "the proxy to put the announced edge in its ring", func() { t.Logf("stdout %q", out.String()) })
	// Its /metrics shows its NATS connection too; the client port has no /metrics.
	clientPort := regexp.MustCompile(`^weft proxy: (http://\S+) `).FindStringSubmatch(out.String())
	if resp, err := http.Get(clientPort[1] + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the client port's /metrics: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	if m := metrics(t, base); !strings.Contains(m, "\nweft_nats_connected 1\n") || !strings.Contains(m, "\nweft_nats_reconnects_total 0\n") {
		t.Errorf("the proxy's /metrics has no NATS connection metrics:\n%s", m)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer acancel()
	info, err := js.AccountInfo(actx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Streams != 0 {
		t.Errorf("the proxy left %d JetStream streams; it must not set up the events stream", info.Streams)
	}

	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Fatalf("the proxy stopped with %v", err)
	}
}

func metrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestRunChecksNATSFlagsFirst: a bad NATS flag stops the proxy before it connects (nothing
// answers at the --nats given: a proxy that connected first would retry until the context
// ended), with an error naming the flag.
func TestRunChecksNATSFlagsFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for flag, args := range map[string][]string{
		"--nats-creds": {"--nats-creds", t.TempDir() + "/nosuch.creds"},
		"--nats-cert":  {"--nats-cert", t.TempDir() + "/cert.pem"},
		"--nats":       {"--nats", "nats://a b:4222"},
	} {
		args = append([]string{"--addr", "127.0.0.1:0", "--token-secret", "a test secret of at least 16 bytes", "--nats", "nats://127.0.0.1:1",
			"--log-level", "error"}, args...)
		err := Run(ctx, cli.Program{Name: "weft"}, "proxy", args, io.Discard)
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), flag) {
			t.Errorf("%s: Run = %v; want an error naming %s at once", args, err, flag)
		}
	}
}

// TestRunChecksRegionFlags: a bad --region or --fallback-regions stops the proxy before it
// connects to NATS (nothing answers at the --nats given), with an error naming the flags.
func TestRunChecksRegionFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for why, args := range map[string][]string{
		"bad region":           {"--region", "eu west"},
		"bad fallback":         {"--fallback-regions", "us,ap/south"},
		"own region fallback":  {"--region", "eu", "--fallback-regions", "us, eu"},
		"fallback named twice": {"--fallback-regions", "us,ap,us"},
	} {
		args = append([]string{"--addr", "127.0.0.1:0", "--token-secret", "a test secret of at least 16 bytes", "--nats", "nats://127.0.0.1:1",
			"--log-level", "error"}, args...)
		err := Run(ctx, cli.Program{Name: "weft"}, "proxy", args, io.Discard)
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "--region, --fallback-regions: ") {
			t.Errorf("%s (%s): Run = %v; want an error naming the region flags at once", why, args, err)
		}
	}
	// Well formed, the list is taken in order, spaces and empty names aside.
	o := Options{Secret: "a test secret of at least 16 bytes", Static: "e1=127.0.0.1:1", Region: "eu", Fallback: " us, ,ap "}
	if region, fallback, err := o.regions(); err != nil || region != "eu" || strings.Join(fallback, "|") != "us|ap" {
		t.Errorf("regions: %q %q %v", region, fallback, err)
	}
	if _, _, err := (&Options{Secret: o.Secret, Static: o.Static}).Server(nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("no region given (weft dev's proxy): %v", err)
	}
}

// TestSecretFromFile: the proxy takes its secrets from --token-secret-file (none on the
// command line), verifying tokens of every secret in it; a secret and a file both, or
// neither, stop it with an error that names the flags.
func TestSecretFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, []byte("k2 new-secret-0123456789\nold-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if _, _, err := (&Options{SecretFile: file, Static: "e1=127.0.0.1:1"}).Server(nil, log); err != nil {
		t.Fatalf("--token-secret-file: %v", err)
	}
	for why, o := range map[string]Options{
		"both":    {Secret: "a test secret of at least 16 bytes", SecretFile: file, Static: "e1=127.0.0.1:1"},
		"neither": {Static: "e1=127.0.0.1:1"},
	} {
		if _, _, err := o.Server(nil, log); err == nil || !strings.Contains(err.Error(), "--token-secret") {
			t.Errorf("%s: %v, want an error naming --token-secret", why, err)
		}
	}
}
