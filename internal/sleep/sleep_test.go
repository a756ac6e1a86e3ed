package sleep

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestForWaits(t *testing.T) {
	start := time.Now()
	if err := For(context.Background(), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The timer's lower bound only: a wait never ends early, however loaded the machine.
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("returned after %v of a 20ms wait", waited)
	}
}

func TestForStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- For(ctx, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("For after cancel: %v, want context.Canceled", err)
	}
}

func TestForAnEndedContextWins(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 { // a select between two ready cases would pick either
		if err := For(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("For(ended, 0): %v, want context.Canceled", err)
		}
	}
}
