package bucket

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Pacer is a Bucket for admitting connections in a herd: when it refuses, it tells the caller
// when to come back so that the refused spread out over the time the rate needs to take them
// all, instead of all returning at the next token and being refused again. It estimates the
// herd from the refusals of the last two seconds.
type Pacer struct {
	Bucket
	rate    float64
	sec     atomic.Int64 // the second refused counts
	refused atomic.Int64 // refusals in that second
	prev    atomic.Int64 // refusals in the second before
}

// NewPacer returns a pacer admitting rate per second with bursts of burst; rate <= 0 admits
// everything.
func NewPacer(rate float64, burst int) *Pacer {
	p := &Pacer{rate: rate}
	p.Set(rate, burst)
	return p
}

// Admit takes a token at now, or says when to try again: after the next token, plus a random
// share of the time the refused herd needs at the pacer's rate (at least a second).
func (p *Pacer) Admit(now int64) (ok bool, retryAfter time.Duration) {
	ok, wait := p.Take(now)
	if ok {
		return true, 0
	}
	sec := now / int64(time.Second)
	if old := p.sec.Load(); old != sec && p.sec.CompareAndSwap(old, sec) {
		last := p.refused.Swap(0)
		if old != sec-1 {
			last = 0
		}
		p.prev.Store(last)
	}
	herd := p.refused.Add(1) + p.prev.Load()
	spread := max(time.Duration(float64(herd)/p.rate*float64(time.Second)), time.Second)
	return false, wait + rand.N(spread)
}
