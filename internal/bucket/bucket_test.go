package bucket

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestBurstThenRate(t *testing.T) {
	b := New(10, 5) // 10/s: one token per 100ms, 5 at once
	now := int64(1e12)
	for i := range 5 {
		if ok, _ := b.Take(now); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait := b.Take(now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("6th at once: ok=%v wait=%v, want refused for 100ms", ok, wait)
	}
	if ok, _ := b.Take(now + int64(99*time.Millisecond)); ok {
		t.Fatal("a token before the interval passed")
	}
	if ok, _ := b.Take(now + int64(100*time.Millisecond)); !ok {
		t.Fatal("no token after one interval")
	}
	// A long idle spell refills to the burst, never beyond.
	later := now + int64(time.Hour)
	for i := range 5 {
		if ok, _ := b.Take(later); !ok {
			t.Fatalf("after idling, burst token %d refused", i)
		}
	}
	if ok, _ := b.Take(later); ok {
		t.Fatal("idling saved up more than the burst")
	}
}

func TestUnlimited(t *testing.T) {
	var nilB *Bucket
	for _, b := range []*Bucket{nilB, {}, New(0, 1), New(-1, 10)} {
		for range 1000 {
			if !b.Allow() {
				t.Fatal("an unlimited bucket refused")
			}
		}
	}
}

// TestConcurrentTakesNeverExceedBudget: many goroutines on one bucket at a frozen clock get
// exactly the burst, no more (the CAS loop loses no update and double-spends no token).
func TestConcurrentTakesNeverExceedBudget(t *testing.T) {
	b := New(1, 1000)
	var got atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if ok, _ := b.Take(5e9); ok {
					got.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got.Load() != 1000 {
		t.Fatalf("%d tokens taken from a burst of 1000", got.Load())
	}
}

// BenchmarkBucket: the hot-path check, ours beside golang.org/x/time/rate's Limiter.Allow
// (which takes a mutex), on one goroutine and shared by all (the per-team and per-node case).
func BenchmarkBucket(b *testing.B) {
	b.Run("weft", func(b *testing.B) {
		bk := New(1e9, 1e6)
		for b.Loop() {
			bk.Allow()
		}
	})
	b.Run("x-time-rate", func(b *testing.B) {
		l := rate.NewLimiter(1e9, 1e6)
		for b.Loop() {
			l.Allow()
		}
	})
	b.Run("weft-shared", func(b *testing.B) {
		bk := New(1e9, 1e6)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				bk.Allow()
			}
		})
	})
	b.Run("x-time-rate-shared", func(b *testing.B) {
		l := rate.NewLimiter(1e9, 1e6)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow()
			}
		})
	})
}
