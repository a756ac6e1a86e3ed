package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestOriginOperatorEndpoints: `weft origin --ops-addr` serves /metrics (its requests by
// method and status, and its NATS connection's) and /healthz on a listener of their own, and
// none of it on the origin's port.
func TestOriginOperatorEndpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"origin", "--addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--rate", "0", "--size", "tiny",
			"--ops-addr", "127.0.0.1:0", "--log-level", "error"}, &out)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("weft origin did not stop")
		}
	}()
	originRE := regexp.MustCompile(`origin  (http://[^/\s]+)`)
	opsRE := regexp.MustCompile(`ops     (http://\S+)`)
	var origin, ops string
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("weft origin exited early: %v\n%s", err, out.String())
		default:
		}
		o, p := originRE.FindStringSubmatch(out.String()), opsRE.FindStringSubmatch(out.String())
		if o == nil || p == nil {
			return false
		}
		origin, ops = o[1], p[1]
		return true
	}, "weft origin to print its addresses")
	get(t, origin+"/origin/v1/teams/T00000000") // one request to count
	if m := get(t, ops+"/metrics"); !strings.Contains(m, `weft_origin_requests_total{code="`) || !strings.Contains(m, "\nweft_nats_connected 1\n") {
		t.Errorf("the origin's /metrics:\n%.2000s", m)
	}
	if h := get(t, ops+"/healthz"); h != "ok\n" {
		t.Errorf("the origin's /healthz: %q", h)
	}
	resp, err := http.Get(origin + "/metrics")
	testkit.OK(t, err)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("the origin's own port serves /metrics")
	}
}
