package loadtest

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// histMax is the longest duration a Hist records (longer ones count as this): no scenario
// waits longer than this for one answer.
const histMax = 10 * time.Minute

// Hist records durations in an HDR histogram: 1 µs to 10 minutes with 3 significant digits,
// so every percentile is within 0.1% of the true value at any scale, in fixed memory (a
// scenario records millions of round trips). It is safe for concurrent use; recording takes
// a mutex, which costs nothing next to a round trip over loopback.
type Hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewHist returns an empty Hist.
func NewHist() *Hist {
	return &Hist{h: hdrhistogram.New(1, int64(histMax/time.Microsecond), 3)}
}

// Record adds one duration (under 1 µs counts as 1 µs, over 10 minutes as 10 minutes).
func (h *Hist) Record(d time.Duration) {
	us := min(max(d.Microseconds(), 1), int64(histMax/time.Microsecond))
	h.mu.Lock()
	_ = h.h.RecordValue(us) // in range by the clamp above: no error
	h.mu.Unlock()
}

// Merge adds every value of o.
func (h *Hist) Merge(o *Hist) {
	o.mu.Lock()
	snap := hdrhistogram.Import(o.h.Export())
	o.mu.Unlock()
	h.mu.Lock()
	h.h.Merge(snap)
	h.mu.Unlock()
}

// Dist is a distribution of durations, in milliseconds.
type Dist struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

// Dist reads the distribution. A percentile is the smallest recorded value that at least that
// share of the values are equal to or below (to the histogram's 0.1%).
func (h *Hist) Dist() Dist {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return Dist{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Dist{N: h.h.TotalCount(), Mean: h.h.Mean() / 1000,
		P50: ms(h.h.ValueAtQuantile(50)), P90: ms(h.h.ValueAtQuantile(90)), P99: ms(h.h.ValueAtQuantile(99)),
		P999: ms(h.h.ValueAtQuantile(99.9)), Max: ms(h.h.Max())}
}

// plotQuantiles are where a latency plot samples the distribution: denser toward the tail,
// where the interesting part of a latency distribution is.
var plotQuantiles = []float64{10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 100}

// Quantiles is the distribution as (percentile, ms) points, for a latency plot.
func (h *Hist) Quantiles() [][2]float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return nil
	}
	pts := make([][2]float64, 0, len(plotQuantiles))
	for _, q := range plotQuantiles {
		pts = append(pts, [2]float64{q, float64(h.h.ValueAtQuantile(q)) / 1000})
	}
	return pts
}

// reset forgets every value.
func (h *Hist) reset() {
	h.mu.Lock()
	h.h.Reset()
	h.mu.Unlock()
}

// mergeSnapshot adds the values of s, a Hist exported by another process (nil: none).
func (h *Hist) mergeSnapshot(s *hdrhistogram.Snapshot) {
	if s == nil {
		return
	}
	o := hdrhistogram.Import(s)
	h.mu.Lock()
	h.h.Merge(o)
	h.mu.Unlock()
}
