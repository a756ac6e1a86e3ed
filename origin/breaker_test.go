package origin

import (
	"context"
	"errors"
	"testing"
	"time"
)

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
