package edge

import (
	"math"
	rtmetrics "runtime/metrics"
	"time"
)

const schedLatencies = "/sched/latencies:seconds"

// lagWindow measures how long this process's runnable goroutines wait for a CPU: the Go
// runtime's scheduling latency (runtime/metrics "/sched/latencies:seconds"), over the window
// since its previous call. It is not safe for concurrent use.
//
// It is the load signal an edge announces and a proxy paces new connections by. Heap and
// session counts say how much a process holds; scheduling latency says whether it keeps up:
// every request a process serves waits this long, once or more, before it runs. It rises
// with CPU contention from inside the process (a burst of new sessions, a GC's assists) and
// from outside (other processes on the host), which is what a caller deciding to send more
// work needs to know either way.
type lagWindow struct {
	sample []rtmetrics.Sample
	prev   []uint64
}

// newLagWindow starts a window now.
func newLagWindow() *lagWindow {
	w := &lagWindow{sample: []rtmetrics.Sample{{Name: schedLatencies}}}
	w.read()
	return w
}

// read returns the histogram now and the counts of the window that ends now.
func (w *lagWindow) read() (h *rtmetrics.Float64Histogram, delta []uint64) {
	rtmetrics.Read(w.sample)
	if w.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return nil, nil // a runtime without the metric: no signal, never a false alarm
	}
	h = w.sample[0].Value.Float64Histogram()
	delta = make([]uint64, len(h.Counts))
	for i, c := range h.Counts {
		if i < len(w.prev) {
			c -= w.prev[i]
		}
		delta[i] = c
	}
	w.prev = append(w.prev[:0], h.Counts...)
	return h, delta
}

// quantile returns the q-quantile (0 < q ≤ 1) of the scheduling latencies since the previous
// call, and how many goroutine schedulings it saw (the runtime times a sample of them, about
// one in eight). Latencies are bucketed by the runtime; the
// answer is the upper bound of the bucket the quantile falls in (its lower bound for the
// unbounded last bucket), so it errs high, never low.
func (w *lagWindow) quantile(q float64) (time.Duration, uint64) {
	h, delta := w.read()
	if h == nil {
		return 0, 0
	}
	return bucketQuantile(h.Buckets, delta, q)
}

// bucketQuantile is quantile over counts in the runtime's bucketing: len(bounds) == len(counts)+1.
func bucketQuantile(bounds []float64, counts []uint64, q float64) (time.Duration, uint64) {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen < rank {
			continue
		}
		upper := bounds[i+1]
		if math.IsInf(upper, 1) {
			upper = bounds[i]
		}
		return time.Duration(upper * float64(time.Second)), total
	}
	return time.Duration(bounds[len(bounds)-2] * float64(time.Second)), total
}
