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

// TestPacerSpreadsAHerd: 10,000 arrivals at once at 1,000/s with a burst of 100: the burst is
// admitted, and the refused are told to come back spread evenly over the ~10 s the rate needs,
// not all at the next token.
func TestPacerSpreadsAHerd(t *testing.T) {
	p := NewPacer(1000, 100)
	now := int64(50 * time.Second)
	admitted := 0
	var bins [12]int
	for range 10_000 {
		ok, after := p.Admit(now)
		if ok {
			admitted++
			continue
		}
		bins[min(int(after/time.Second), len(bins)-1)]++
	}
	if admitted != 100 {
		t.Fatalf("admitted %d of a herd at once, want the burst of 100", admitted)
	}
	// Booked one slot apart at 1,000/s: 9,900 returns over ~9.9 s, about 1,000 a second.
	used := 0
	for _, n := range bins {
		if n > 0 {
			used++
		}
		if n > 1100 {
			t.Fatalf("returns bunched: %v", bins)
		}
	}
	if used < 9 {
		t.Fatalf("returns spread over %d seconds only: %v", used, bins)
	}
	t.Logf("retry-after per second: %v", bins)
}

// TestSetCarriesTheFillOver: a bucket emptied at one rate is still empty at half the rate (no
// burst through at the change), and one emptied at a slow rate refills at the fast rate it was
// set to (no wait for the old interval).
func TestSetCarriesTheFillOver(t *testing.T) {
	b := New(150, 20)
	now := Now()
	for i := range 20 {
		if ok, _ := b.Take(now); !ok {
			t.Fatalf("token %d of a burst of 20 refused", i)
		}
	}
	b.Set(75, 20)
	if ok, _ := b.Take(Now()); ok {
		t.Fatal("halving the rate of an empty bucket let a connection through at once")
	}

	b = New(1, 1)
	if ok, _ := b.Take(Now()); !ok {
		t.Fatal("the first token refused")
	}
	b.Set(1000, 1)
	if ok, wait := b.Take(Now() + int64(2*time.Millisecond)); !ok {
		t.Fatalf("2 ms after speeding up to 1000/s, refused for %v more: still on the old interval", wait)
	}
}

// TestBucketSaturates: a rate and burst whose product passes int64's range in nanoseconds (a
// slow rate with a huge burst, as an edge may announce) make a bucket that admits at once what
// fits in 2^60 ns of tolerance, not one whose arithmetic overflowed into refusing everything
// or admitting without end.
func TestBucketSaturates(t *testing.T) {
	for _, tc := range []struct {
		rate     float64
		burst    int
		min, max int // admitted of 1,000 takes at one instant
	}{{0.1, 1e9, 1000, 1000}, {1e-12, 20, 1, 2}, {1e-12, 1e9, 1, 2}, {1e-12, 1, 1, 1}} {
		b := New(tc.rate, tc.burst)
		now := Now()
		n := 0
		for range 1000 {
			if ok, _ := b.Take(now); ok {
				n++
			}
		}
		if n < tc.min || n > tc.max {
			t.Errorf("rate %g, burst %d: %d of 1,000 takes admitted at one instant, want %d to %d", tc.rate, tc.burst, n, tc.min, tc.max)
		}
	}
}
