package loadtest

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// within says whether got is within the histogram's 0.1% of want (plus a microsecond: the
// histogram's unit).
func within(got, want float64) bool { return math.Abs(got-want) <= want*0.001+0.001 }

// TestHistPercentiles: on 1..10,000 ms recorded in shuffled order from several goroutines,
// every percentile is the nearest-rank value to the histogram's precision.
func TestHistPercentiles(t *testing.T) {
	h := NewHist()
	vals := make([]int, 10_000)
	for i := range vals {
		vals[i] = i + 1
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for _, v := range vals[g*2500 : (g+1)*2500] {
				h.Record(time.Duration(v) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	d := h.Dist()
	if d.N != 10_000 {
		t.Fatalf("n = %d, want 10000", d.N)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", d.P50, 5000}, {"p90", d.P90, 9000}, {"p99", d.P99, 9900}, {"p99.9", d.P999, 9990}, {"max", d.Max, 10000}, {"mean", d.Mean, 5000.5}} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %v ms, want %v ms (±0.1%%)", c.name, c.got, c.want)
		}
	}
}

// TestHistSkewAndMerge: a distribution of 990 fast values and 10 slow ones has its p99 in the
// fast part and its p99.9 in the slow part; merging two halves gives the same distribution.
func TestHistSkewAndMerge(t *testing.T) {
	a, b, all := NewHist(), NewHist(), NewHist()
	for i := range 1000 {
		d := 2 * time.Millisecond
		if i >= 990 {
			d = 800 * time.Millisecond
		}
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(b)
	for _, d := range []Dist{all.Dist(), a.Dist()} {
		if d.N != 1000 || !within(d.P99, 2) || !within(d.P999, 800) || !within(d.P50, 2) {
			t.Fatalf("got %+v, want n 1000, p50 and p99 2 ms, p99.9 800 ms", d)
		}
	}
	if q := all.Quantiles(); len(q) != len(plotQuantiles) || !within(q[len(q)-1][1], 800) {
		t.Fatalf("quantiles %v: want %d points ending at 800 ms", q, len(plotQuantiles))
	}
}

// TestHistClamps: under 1 µs counts as 1 µs and over the range as its top, instead of
// being dropped.
func TestHistClamps(t *testing.T) {
	h := NewHist()
	h.Record(0)
	h.Record(time.Hour)
	d := h.Dist()
	if d.N != 2 || !within(d.Max, float64(histMax.Milliseconds())) || d.P50 > 0.002 {
		t.Fatalf("got %+v", d)
	}
	if (&Hist{h: NewHist().h}).Dist() != (Dist{}) {
		t.Fatal("an empty histogram has a zero distribution")
	}
}

// TestOpenLoopIsBounded: the loop makes rate×d calls when they answer, skips calls past
// maxInFlight instead of piling them up when they do not, and returns once ctx ends even
// though the calls it started were still due to run for an hour.
func TestOpenLoopIsBounded(t *testing.T) {
	var n atomic.Int64
	started, skipped := openLoop(context.Background(), 200, 250*time.Millisecond, 10, func(context.Context, int, time.Time) { n.Add(1) })
	if started != 50 || skipped != 0 || n.Load() != 50 {
		t.Fatalf("started %d skipped %d called %d, want 50, 0, 50", started, skipped, n.Load())
	}

	// Calls that block until ctx ends: 3 run, every call due after them is skipped (the 3
	// never finish while the loop runs), and the loop returns when ctx ends, 200 ms into its
	// hour.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	var st, sk int64
	go func() {
		defer close(done)
		st, sk = openLoop(ctx, 1000, time.Hour, 3, func(ctx context.Context, _ int, _ time.Time) { <-ctx.Done() })
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("openLoop did not return after its context ended")
	}
	if st != 3 || sk == 0 {
		t.Fatalf("started %d skipped %d: want 3 started and the calls due after them skipped", st, sk)
	}
}

// TestBytesPerConnIsTheSlope: the slope of RSS over the idle steps, not RSS over a
// baseline, and nothing for fewer than two idle steps.
func TestBytesPerConnIsTheSlope(t *testing.T) {
	steps := []*CapacityStep{
		{Phase: "idle", Connections: 1000, RSSBytes: 100e6},
		{Phase: "idle", Connections: 2000, RSSBytes: 110e6},
		{Phase: "idle", Connections: 3000, RSSBytes: 120e6},
		{Phase: "active", Connections: 3000, RSSBytes: 500e6},
	}
	if got := bytesPerConn(steps); math.Abs(got-10_000) > 1e-6 {
		t.Fatalf("bytes per conn %v, want 10000", got)
	}
	if got := bytesPerConn(steps[:1]); got != 0 {
		t.Fatalf("one idle step: %v, want 0", got)
	}
}

// TestBendOf: the first step past twice the best idle p99 (and 5 ms more) is the bend; small
// absolute changes and the query step are not.
func TestBendOf(t *testing.T) {
	step := func(phase string, conns int, probe, deliver float64) *CapacityStep {
		return &CapacityStep{Phase: phase, Connections: conns, EventsPerS: 5, Probe: Dist{N: 10, P99: probe}, Deliver: Dist{N: 10, P99: deliver}}
	}
	calm := []*CapacityStep{step("idle", 1000, 2, 0), step("idle", 2000, 3.5, 0), step("active", 2000, 6, 40), step("query", 2000, 90, 0)}
	if got := bendOf(calm); got != "" {
		t.Fatalf("no bend expected (2 → 6 ms is under +5 ms; the query step does not count), got %q", got)
	}
	bent := append(calm[:3:3], step("active", 2000, 7, 95), step("active", 2000, 30, 400))
	if got := bendOf(bent); got == "" || !strings.Contains(got, "publish-to-deliver p99 95.0") {
		t.Fatalf("bend at the delivery p99 of 95 ms expected, got %q", got)
	}
	probeBent := append(calm[:2:2], step("active", 2000, 12, 40))
	if got := bendOf(probeBent); !strings.Contains(got, "users.info p99 12.0 ms") {
		t.Fatalf("bend at users.info 12 ms expected, got %q", got)
	}
}

// TestReportMarkdown: a report's Markdown table has a separator after its header.
func TestReportMarkdown(t *testing.T) {
	r := &Report{Scenario: "x", Table: [][]string{{"a", "b"}, {"1", "2"}}}
	if got, want := r.Markdown(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n"; got != want {
		t.Fatalf("markdown %q, want %q", got, want)
	}
}
