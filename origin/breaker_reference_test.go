package origin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
)

// The breaker in front of a real origin: these tests drive the reference origin's faults.

// countingOrigin is the reference origin behind a handler that counts the requests reaching it.
func countingOrigin(t *testing.T) (*reference.Server, *atomic.Int64, string) {
	srv, _ := serveReference(t, reference.ServerConfig{})
	var n atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return srv, &n, hs.URL
}

// TestBreakerOpensFailsFastProbesAndCloses: under origin failure the breaker opens after the
// configured failures in a row; while open it answers at once, with ErrUnavailable, without
// calling the origin; after OpenFor it lets a probe through, and the origin being back closes
// it.
func TestBreakerOpensFailsFastProbesAndCloses(t *testing.T) {
	srv, calls, url := countingOrigin(t)
	var mu sync.Mutex
	var changes []string
	br := origin.NewBreaker(origin.BreakerConfig{Failures: 3, OpenFor: 200 * time.Millisecond, K: -1,
		OnStateChange: func(from, to string) { mu.Lock(); changes = append(changes, from+">"+to); mu.Unlock() }})
	c, err := origin.NewClient(origin.ClientConfig{BaseURL: url, Guard: br, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	team := srv.TeamIDs()[0]
	ctx := context.Background()
	srv.SetFaults(reference.Faults{ErrorRate: 1})
	for i := range 3 {
		if _, err := c.Team(ctx, team); !errors.Is(err, origin.ErrUnavailable) || errors.Is(err, origin.ErrBreakerOpen) {
			t.Fatalf("failing call %d: %v", i, err)
		}
	}
	if br.State() != "open" {
		t.Fatalf("state %s after 3 failures", br.State())
	}
	before := calls.Load()
	for range 20 {
		_, err := c.Team(ctx, team)
		if !errors.Is(err, origin.ErrBreakerOpen) || !errors.Is(err, origin.ErrUnavailable) || !origin.IsFailure(err) {
			t.Fatalf("call while open: %v", err)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("%d calls reached the origin while the circuit was open", n)
	}
	// The origin is back; after OpenFor the breaker probes and closes.
	srv.SetFaults(reference.Faults{})
	testkit.Eventually(t, func() bool { return br.State() == "half-open" }, "the breaker to let a probe through")
	if _, err := c.Team(ctx, team); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if br.State() != "closed" {
		t.Fatalf("state %s after a good probe", br.State())
	}
	mu.Lock()
	defer mu.Unlock()
	if got := len(changes); got != 3 || changes[0] != "closed>open" || changes[1] != "open>half-open" || changes[2] != "half-open>closed" {
		t.Fatalf("state changes %v", changes)
	}
}

// TestBreakerNotFoundIsNotAFailure: answers that prove the origin is up (404) never open it.
func TestBreakerNotFoundIsNotAFailure(t *testing.T) {
	_, _, url := countingOrigin(t)
	br := origin.NewBreaker(origin.BreakerConfig{Failures: 2, K: -1})
	c, _ := origin.NewClient(origin.ClientConfig{BaseURL: url, Guard: br})
	for range 10 {
		if _, err := c.Team(context.Background(), "TNOSUCH00"); !errors.Is(err, origin.ErrNotFound) {
			t.Fatalf("unknown team: %v", err)
		}
	}
	if br.State() != "closed" {
		t.Fatalf("404s opened the breaker: %s", br.State())
	}
}
