package edge

import (
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestLagQuantileOfBuckets(t *testing.T) {
	bounds := []float64{0, 0.001, 0.002, 0.010, math.Inf(1)}
	cases := []struct {
		counts []uint64
		q      float64
		want   time.Duration
		n      uint64
	}{
		{[]uint64{0, 0, 0, 0}, 0.99, 0, 0},
		{[]uint64{99, 0, 1, 0}, 0.99, time.Millisecond, 100},      // the 99th of 100 is in the first bucket
		{[]uint64{98, 0, 2, 0}, 0.99, 10 * time.Millisecond, 100}, // the 99th is one of the two slow ones
		{[]uint64{0, 0, 0, 5}, 0.5, 10 * time.Millisecond, 5},     // unbounded bucket: its lower bound
		{[]uint64{1, 1, 1, 1}, 1, 10 * time.Millisecond, 4},
	}
	for _, c := range cases {
		got, n := bucketQuantile(bounds, c.counts, c.q)
		if got != c.want || n != c.n {
			t.Errorf("bucketQuantile(%v, %.2f) = %v over %d, want %v over %d", c.counts, c.q, got, n, c.want, c.n)
		}
	}
}

// TestLagWindowSeesOnlyItsOwnSchedulings: a window after a burst of scheduling counts that burst,
// and the next window, with nothing scheduled in between but the test itself, counts far fewer.
func TestLagWindowSeesOnlyItsOwnSchedulings(t *testing.T) {
	w := newLagWindow()
	var wg sync.WaitGroup
	for range 2000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.Gosched()
		}()
	}
	wg.Wait()
	_, burst := w.quantile(0.99)
	// The runtime times one goroutine scheduling in eight (gTrackingPeriod), so 2000 new
	// goroutines give about 250 samples, plus the Gosched of some.
	if burst < 200 {
		t.Fatalf("the window saw %d schedulings, want at least 200 for the 2000 goroutines started", burst)
	}
	_, after := w.quantile(0.99)
	if after >= burst/2 {
		t.Fatalf("the next window saw %d schedulings, want far fewer than the burst's %d", after, burst)
	}
}
