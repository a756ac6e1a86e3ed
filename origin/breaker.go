package origin

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrBreakerOpen is why a Breaker refused a call without trying the origin. It is wrapped in
// an *Error of kind ErrUnavailable, so callers treat it like any origin outage.
var ErrBreakerOpen = errors.New("origin: circuit open: not calling the origin for now")

// ErrThrottled is why a Breaker refused a call by adaptive throttling.
var ErrThrottled = errors.New("origin: throttled: the origin has been refusing most calls")

// BreakerConfig configures a Breaker. Zero values mean the defaults on each field.
type BreakerConfig struct {
	// Failures in a row that open the circuit; default 5. A failure is what IsFailure says
	// (unavailable or timed out), not a 404 or a garbled answer: those mean the origin is up.
	Failures int
	// OpenFor is how long the open circuit refuses before it lets one probe through; default 5s.
	OpenFor time.Duration
	// K and Window are the adaptive throttle of Google's SRE book ("Handling Overload"): a call
	// is refused locally with probability max(0, (requests − K·accepts) / (requests + 1)) over
	// the last Window (calls it refused count as requests; calls the open circuit refused do
	// not: the breaker already answers for those). Defaults 2 and 10s: a longer window remembers
	// an outage longer after the origin is back. K < 0 turns the throttle off.
	K      float64
	Window time.Duration
	// OnStateChange is told every change of the circuit: "closed", "open", "half-open".
	OnStateChange func(from, to string)
	Logger        *slog.Logger
	// Rand draws the throttle's coin; default math/rand/v2.
	Rand func() float64
	// Now is the clock of the throttle's window; default time.Now.
	Now func() time.Time
}

// Breaker is the origin's Guard: a circuit breaker (sony/gobreaker) that opens after repeated
// failures and fails fast while open, probing on its own, plus adaptive client-side throttling
// from the recent accept ratio, which sheds a share of calls before the breaker trips and
// while the origin is partly up. Every refusal wraps ErrUnavailable.
type Breaker struct {
	cfg BreakerConfig
	cb  *gobreaker.CircuitBreaker[struct{}]

	mu      sync.Mutex
	buckets [10]struct {
		start             time.Time
		requests, accepts float64
	}
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 5 * time.Second
	}
	if cfg.K == 0 {
		cfg.K = 2
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Breaker{cfg: cfg}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "origin",
		MaxRequests: 1, // one probe at a time while half-open
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(cfg.Failures) },
		IsSuccessful: func(err error) bool {
			return err == nil || !IsFailure(err)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			cfg.Logger.Warn("origin circuit changed", "from", from.String(), "to", to.String())
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(from.String(), to.String())
			}
		},
	})
	return b
}

// State is the circuit's state: "closed", "open" or "half-open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Do runs fn unless the circuit is open or the throttle sheds the call.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	if p := b.rejectProbability(); p > 0 && b.cfg.Rand() < p {
		b.record(false)
		return &Error{Op: "call", Kind: ErrUnavailable, Err: ErrThrottled}
	}
	var callErr error
	_, err := b.cb.Execute(func() (struct{}, error) {
		callErr = fn(ctx)
		return struct{}{}, callErr
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return &Error{Op: "call", Kind: ErrUnavailable, Err: ErrBreakerOpen}
	}
	b.record(!IsFailure(callErr))
	return callErr
}

// bucket returns the current bucket of the window, clearing it when its time came round. mu held.
func (b *Breaker) bucket(now time.Time) *struct {
	start             time.Time
	requests, accepts float64
} {
	width := b.cfg.Window / time.Duration(len(b.buckets))
	slot := now.Truncate(width)
	bk := &b.buckets[(slot.UnixNano()/int64(width))%int64(len(b.buckets))]
	if !bk.start.Equal(slot) {
		bk.start, bk.requests, bk.accepts = slot, 0, 0
	}
	return bk
}

func (b *Breaker) record(accepted bool) {
	if b.cfg.K < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.bucket(b.cfg.Now())
	bk.requests++
	if accepted {
		bk.accepts++
	}
}

// rejectProbability is max(0, (requests − K·accepts) / (requests + 1)) over the window.
func (b *Breaker) rejectProbability() float64 {
	if b.cfg.K < 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	oldest := now.Add(-b.cfg.Window)
	var req, acc float64
	for i := range b.buckets {
		if bk := &b.buckets[i]; bk.start.After(oldest) {
			req += bk.requests
			acc += bk.accepts
		}
	}
	return max(0, (req-b.cfg.K*acc)/(req+1))
}
