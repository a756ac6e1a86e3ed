package client

import (
	"math/rand/v2"
	"time"
)

// Backoff is the reconnect schedule: exponential with full jitter. The n-th consecutive
// failed attempt waits a uniformly random time in [0, min(Max, Min·2ⁿ)): spreading a crowd's
// retries over the whole window is what keeps a million clients that lost the same edge from
// arriving at the next one in the same second. The zero value means the defaults.
type Backoff struct {
	// Min is the window of the first retry; default 500ms.
	Min time.Duration
	// Max caps the window; default 30s.
	Max time.Duration
	// StableAfter: a connection that stayed up this long resets the schedule; default 10s.
	// Up counts from when the connection serves requests, after its boot: a connection that
	// the server accepts and then drops at once does not reset it, so a node that
	// crash-loops is not hammered, and neither does one that fails or hangs in its boot,
	// however long the boot took to time out.
	StableAfter time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.StableAfter <= 0 {
		b.StableAfter = 10 * time.Second
	}
	return b
}

// window is the jitter window of attempt n (0 for the first retry).
func (b Backoff) window(n int) time.Duration {
	w := b.Min
	for range n {
		if w >= b.Max/2 {
			return b.Max
		}
		w *= 2
	}
	return min(w, b.Max)
}

// delay is how long to wait before attempt n, given what the server asked for: after a
// goodbye, its reconnect_after_ms is already this client's share of a spread the server chose,
// so it is used as is; a 503 Retry-After is the same number for every client refused in that
// second, so the jittered window is added to it rather than replacing it.
func (b Backoff) delay(n int, r *rand.Rand, hint retryHint) time.Duration {
	switch {
	case hint.goodbye:
		return hint.after
	case hint.after > 0:
		return hint.after + jitter(r, b.window(n))
	}
	return jitter(r, b.window(n))
}

func jitter(r *rand.Rand, w time.Duration) time.Duration {
	if w <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(w)))
}

// retryHint is what the server said about when to come back.
type retryHint struct {
	after   time.Duration
	goodbye bool // after came from a goodbye's reconnect_after_ms
}
