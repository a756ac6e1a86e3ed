// Package bucket is a token bucket with a rate and a burst whose check is one atomic
// compare-and-swap: no lock, so buckets shared by many connections (per team, per node) do
// not make them queue behind each other, and the hot-path check stays in tens of nanoseconds.
//
// It is the generic cell rate algorithm (GCRA): the state is one number, the theoretical arrival
// time (TAT) of the next request if requests came at exactly the rate. A request is allowed when
// TAT is at most burst intervals ahead of now; allowing it pushes TAT one interval further.
// This is the same decision a bucket of burst tokens refilled at rate makes, without a refill
// step or a token count to keep consistent with a timestamp.
package bucket

import (
	"math"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock: a wall-clock step (NTP, an operator) neither floods
// nor starves a bucket, and it costs about half of time.Now, which also reads the wall clock:
// on the hot path the clock is most of the check. (runtime.nanotime is one of the symbols the
// Go team keeps reachable by linkname because so much code uses it.)
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now is the bucket clock: monotonic nanoseconds.
func Now() int64 { return nanotime() }

// Bucket is a token bucket. The zero value and a nil *Bucket allow everything.
type Bucket struct {
	tat       atomic.Int64 // theoretical arrival time, bucket clock
	interval  atomic.Int64 // ns per token; 0: unlimited
	tolerance atomic.Int64 // ns TAT may run ahead of now: (burst-1) intervals
}

// New returns a bucket of burst tokens refilled at rate per second. rate <= 0 means unlimited;
// burst < 1 means 1.
func New(rate float64, burst int) *Bucket {
	b := &Bucket{}
	b.Set(rate, burst)
	return b
}

// Set changes the rate and burst. It is safe to call while others take tokens (a pacer
// adapts its rate to what its edge announces). What the bucket holds carries over as the same
// share of it: a bucket saturated at the old rate is saturated at the new one, so slowing
// down lets no burst through and speeding up makes no caller wait for tokens it would have
// had. A Take that runs alongside may decide on the old interval and the new tolerance: one
// token more or less, once.
func (b *Bucket) Set(rate float64, burst int) {
	if rate <= 0 || math.IsInf(rate, 1) {
		b.interval.Store(0)
		return
	}
	// Saturated, not overflowed, for rates and bursts from an announcement (a slow rate times
	// a big burst passes int64's range in nanoseconds): beyond 2^60 ns (36 years) is forever here, and
	// a TAT of now plus both still fits.
	interval := int64(max(min(float64(time.Second)/rate, 1<<60), 1))
	old := b.interval.Load()
	b.tolerance.Store(int64(min(float64(max(burst, 1)-1)*float64(interval), 1<<60)))
	b.interval.Store(interval)
	if old == 0 || old == interval {
		return
	}
	// TAT runs ahead of now by what the bucket holds, in old intervals: rescale it to new ones.
	now := Now()
	for {
		tat := b.tat.Load()
		if tat <= now {
			return
		}
		scaled := now + int64(float64(tat-now)*float64(interval)/float64(old))
		if b.tat.CompareAndSwap(tat, scaled) {
			return
		}
	}
}

// Allow takes a token if there is one.
func (b *Bucket) Allow() bool {
	ok, _ := b.Take(Now())
	return ok
}

// Take takes a token at time now (bucket clock). When there is none it says how long until
// there will be one.
func (b *Bucket) Take(now int64) (ok bool, retryAfter time.Duration) {
	if b == nil {
		return true, 0
	}
	interval := b.interval.Load()
	if interval == 0 {
		return true, 0
	}
	tolerance := b.tolerance.Load()
	for {
		tat := b.tat.Load()
		start := max(tat, now)
		if wait := start - tolerance - now; wait > 0 {
			return false, time.Duration(wait)
		}
		if b.tat.CompareAndSwap(tat, start+interval) {
			return true, 0
		}
	}
}
