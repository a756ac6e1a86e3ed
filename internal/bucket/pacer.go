package bucket

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// maxAhead caps how far ahead a Pacer books a refused caller's return.
const maxAhead = time.Minute

// Pacer is a Bucket for admitting connections in a herd. When it refuses, it books the caller
// a time to come back: the next free slot at the pacer's rate, after every caller refused
// before it. A herd of N refused at once is told to return spread evenly over the N/rate
// seconds the rate needs to take them, instead of all at the next token (to be refused again).
type Pacer struct {
	Bucket
	next atomic.Int64 // the next free slot for a refused caller, bucket clock
}

// NewPacer returns a pacer admitting rate per second with bursts of burst; rate <= 0 admits
// everything.
func NewPacer(rate float64, burst int) *Pacer {
	p := &Pacer{}
	p.Set(rate, burst)
	return p
}

// Admit takes a token at now, or books a return and says how long until it (with up to one
// slot of jitter, so that returns booked together do not land in the same instant).
func (p *Pacer) Admit(now int64) (ok bool, retryAfter time.Duration) {
	ok, wait := p.Take(now)
	if ok {
		return true, 0
	}
	for {
		booked := p.next.Load()
		slot := max(booked, now+int64(wait))
		if slot-now > int64(maxAhead) { // a herd larger than a minute of the rate: cap, spread
			return false, maxAhead/2 + rand.N(maxAhead/2)
		}
		interval := p.interval.Load()
		if p.next.CompareAndSwap(booked, slot+interval) {
			return false, time.Duration(slot-now) + rand.N(time.Duration(interval)+1)
		}
	}
}
