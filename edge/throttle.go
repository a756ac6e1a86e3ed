package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons a session's reads pause for.
const (
	pauseRequests = "requests" // its request bucket is empty
	pauseOutbound = "outbound" // its outbound queue is over half its bound: more requests would
	// only queue more replies for a client that is not reading them
)

// throttle is the one place that decides whether a session reads its next frame: every reason
// to pause (the session's own request bucket, its team's, …) registers here, each until a time
// or until resumed, and wait returns only once none is left. Two reasons that overlap do not
// race to resume reading: the later one keeps the session paused.
//
// An idle session pays nothing: the map and channel are made on the first pause.
type throttle struct {
	held atomic.Int32 // len(reasons): the reader's check costs one atomic load when 0
	// mu guards reasons and wake. It is last in the fan-out's lock order (hub.mu →
	// session.mu → throttle.mu): the fan-out pauses a session's reads while holding both
	// others (sendLocked), so nothing here takes another lock but the metrics' (onPause).
	mu      sync.Mutex
	reasons map[string]time.Time // reason → until (zero: until resume)
	wake    chan struct{}        // closed when a reason is resumed early
	onPause func(reason string)  // metrics: called when a reason starts
	waiting func(delta int)      // metrics: +1 when wait starts blocking, -1 when it stops
}

// pause holds reads for reason until until (zero: until resume). A reason already held keeps
// the later of its two ends.
func (t *throttle) pause(reason string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reasons == nil {
		t.reasons = make(map[string]time.Time, 2)
	}
	old, held := t.reasons[reason]
	switch {
	case !held:
		t.reasons[reason] = until
		t.held.Add(1)
		if t.onPause != nil {
			t.onPause(reason)
		}
	case old.IsZero():
		// held until resumed: a deadline does not shorten that
	case until.IsZero() || until.After(old):
		t.reasons[reason] = until
	}
}

// resume drops reason now, whatever its end.
func (t *throttle) resume(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, held := t.reasons[reason]; !held {
		return
	}
	delete(t.reasons, reason)
	t.held.Add(-1)
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// active returns the reasons held at now, dropping those that ended, and the earliest end
// among the timed ones (zero when none is timed).
func (t *throttle) active(now time.Time) (n int, next time.Time, wake chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for r, until := range t.reasons {
		if !until.IsZero() && !now.Before(until) {
			delete(t.reasons, r)
			t.held.Add(-1)
			continue
		}
		n++
		if !until.IsZero() && (next.IsZero() || until.Before(next)) {
			next = until
		}
	}
	if n > 0 && t.wake == nil {
		t.wake = make(chan struct{})
	}
	return n, next, t.wake
}

// wait returns when no reason holds reads any more, or with ctx's error.
func (t *throttle) wait(ctx context.Context) error {
	if t.held.Load() == 0 { // the read path of every frame: no lock, no clock
		return nil
	}
	n, next, wake := t.active(time.Now())
	if n == 0 {
		return nil
	}
	if t.waiting != nil {
		t.waiting(1)
		defer t.waiting(-1)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n > 0 {
		var tc <-chan time.Time
		if !next.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(next))
			} else {
				timer.Reset(time.Until(next))
			}
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-tc:
		}
		n, next, wake = t.active(time.Now())
	}
	return nil
}
