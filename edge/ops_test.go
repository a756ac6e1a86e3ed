package edge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestDrainOnlyFromLoopback: POST /drain is taken from the edge's own host only.
func TestDrainOnlyFromLoopback(t *testing.T) {
	for remote, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.3.2.1:5000": true, "[::1]:5000": true, "[::ffff:127.0.0.1]:5000": true,
		"10.0.0.7:5000": false, "[2001:db8::1]:5000": false, "0.0.0.0:5000": false, "garbage": false, "": false,
	} {
		if got := fromLoopback(remote); got != want {
			t.Errorf("fromLoopback(%q) = %v, want %v", remote, got, want)
		}
	}
}

// TestShutdownDuringDrain: a Shutdown that arrives while another drains (a SIGTERM while POST
// /drain runs) waits within its own context, not the first's, and once the drain is over
// every Shutdown returns at once.
func TestShutdownDuringDrain(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if !h.edge.conns.add() { // a WebSocket handler under way, which the drain waits for
		t.Fatal("the edge took no work before its drain")
	}
	first := make(chan error, 1)
	go func() { first <- h.edge.Shutdown(context.Background()) }()
	testkit.Eventually(t, func() bool { return h.edge.draining.Load() }, "the first Shutdown to begin the drain")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	second := make(chan error, 1)
	go func() { second <- h.edge.Shutdown(ctx) }()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a Shutdown during the drain with its context ended returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second): // a bound on a bug, not a timing: it returns at once
		h.edge.conns.done()
		t.Fatal("a Shutdown during the drain waited for it past its own context")
	}
	select {
	case err := <-first:
		t.Fatalf("the first Shutdown returned (%v) with a handler still under way", err)
	default:
	}
	h.edge.conns.done()
	testkit.OK(t, <-first)
	testkit.OK(t, h.edge.Shutdown(ctx)) // over: nil at once, even with a context that has ended
}
