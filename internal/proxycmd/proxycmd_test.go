package proxycmd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
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
			"--nats", emb.ClientURL(), "--log-level", "error"}, &out)
	}()
	stopped := false
	defer func() { // whatever fails, the proxy stops before the NATS server does
		if !stopped {
			cancel()
			<-done
		}
	}()

	listening := regexp.MustCompile(`^weft proxy: (http://\S+) `)
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

// TestConnectNATSAtStart: a NATS that does not answer is retried until the context ends, and
// the error then names the URL (without its password) and the last failure; a URL that does
// not parse fails at once.
func TestConnectNATSAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port nothing listens on
	log := slog.New(slog.DiscardHandler)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	nc, err := connectNATS(ctx, "nats://proxy:hunter2@"+addr, "weft-proxy", log)
	if err == nil {
		nc.Close()
		t.Fatalf("connected to %s, where nothing listens", addr)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr) ||
		!strings.Contains(err.Error(), "last error") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable NATS: %v; want the context's end, the URL without its password, and the last error", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err = connectNATS(ctx, "nats://a b:4222", "weft-proxy", log)
	if err == nil {
		nc.Close()
		t.Fatal("a URL with a space in its host connected")
	}
	if errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "--nats") {
		t.Errorf("malformed URL: %v; want an immediate error naming --nats", err)
	}
}
