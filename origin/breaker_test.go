package origin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingOrigin is the reference origin behind a handler that counts the requests reaching it.
func countingOrigin(t *testing.T) (*Server, *atomic.Int64, string) {
	srv, _ := refServe(t, ServerConfig{})
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
	br := NewBreaker(BreakerConfig{Failures: 3, OpenFor: 200 * time.Millisecond, K: -1,
		OnStateChange: func(from, to string) { mu.Lock(); changes = append(changes, from+">"+to); mu.Unlock() }})
	c, err := NewClient(ClientConfig{BaseURL: url, Guard: br, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	team := srv.TeamIDs()[0]
	ctx := context.Background()
	srv.SetFaults(Faults{ErrorRate: 1})
	for i := range 3 {
		if _, err := c.Team(ctx, team); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("failing call %d: %v", i, err)
		}
	}
	if br.State() != "open" {
		t.Fatalf("state %s after 3 failures", br.State())
	}
	before := calls.Load()
	for range 20 {
		_, err := c.Team(ctx, team)
		if !errors.Is(err, ErrBreakerOpen) || !errors.Is(err, ErrUnavailable) || !IsFailure(err) {
			t.Fatalf("call while open: %v", err)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("%d calls reached the origin while the circuit was open", n)
	}
	// The origin is back; after OpenFor the breaker probes and closes.
	srv.SetFaults(Faults{})
	refWaitFor(t, "the breaker to let a probe through", func() bool { return br.State() == "half-open" })
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
	br := NewBreaker(BreakerConfig{Failures: 2, K: -1})
	c, _ := NewClient(ClientConfig{BaseURL: url, Guard: br})
	for range 10 {
		if _, err := c.Team(context.Background(), "TNOSUCH00"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown team: %v", err)
		}
	}
	if br.State() != "closed" {
		t.Fatalf("404s opened the breaker: %s", br.State())
	}
}

// TestAdaptiveThrottle: the probability of a local refusal follows the SRE book's formula over
// the window, and old calls age out of it.
func TestAdaptiveThrottle(t *testing.T) {
	now := time.Unix(1000, 0)
	coin := 0.5
	br := NewBreaker(BreakerConfig{Failures: 1000, Window: 10 * time.Second,
		Now: func() time.Time { return now }, Rand: func() float64 { return coin }})
	for i := range 100 {
		br.record(i < 10) // 100 requests, 10 accepted
	}
	want := (100 - 2*10.0) / 101
	if p := br.rejectProbability(); p < want-1e-9 || p > want+1e-9 {
		t.Fatalf("reject probability %v, want %v", p, want)
	}
	calls := 0
	err := br.Do(context.Background(), func(context.Context) error { calls++; return nil })
	if !errors.Is(err, ErrThrottled) || !errors.Is(err, ErrUnavailable) || calls != 0 {
		t.Fatalf("coin 0.5 under p %.2f: err %v, %d calls", want, err, calls)
	}
	coin = 0.99
	if err := br.Do(context.Background(), func(context.Context) error { calls++; return nil }); err != nil || calls != 1 {
		t.Fatalf("coin 0.99 under p %.2f: err %v, %d calls", want, err, calls)
	}
	now = now.Add(11 * time.Second) // the window slid past all of it
	if p := br.rejectProbability(); p != 0 {
		t.Fatalf("reject probability %v after the window passed", p)
	}
	for range 50 {
		br.record(true)
	}
	if p := br.rejectProbability(); p != 0 {
		t.Fatalf("reject probability %v with every call accepted", p)
	}
}
