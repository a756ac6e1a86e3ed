package loadtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// openLoop calls fn at rate per second for d (or until ctx ends), each call on its own
// goroutine, and returns once every call has returned. It is an open loop: a call starts on
// schedule whether or not earlier ones have answered, the way independent users send
// requests, so a slow server shows up as latency instead of as fewer requests (measuring from
// the scheduled start avoids coordinated omission). At most maxInFlight calls run at once;
// a call that would pass it is skipped and counted, so a stalled server cannot make the load
// generator hold unbounded goroutines.
func openLoop(ctx context.Context, rate float64, d time.Duration, maxInFlight int,
	fn func(ctx context.Context, i int, scheduled time.Time)) (started, skipped int64) {
	if rate <= 0 || d <= 0 {
		return 0, 0
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	total := int(d.Seconds() * rate)
	t := time.NewTicker(min(interval, 5*time.Millisecond))
	defer t.Stop()
	next := 0
	for next < total {
		select {
		case <-ctx.Done():
			wg.Wait()
			return started, skipped
		case now := <-t.C:
			for ; next < total; next++ {
				at := start.Add(time.Duration(next) * interval)
				if at.After(now) {
					break
				}
				if ctx.Err() != nil { // ended while this tick was taken: start nothing more
					break
				}
				if inFlight.Load() >= int64(maxInFlight) {
					skipped++
					continue
				}
				inFlight.Add(1)
				started++
				i := next
				wg.Go(func() {
					defer inFlight.Add(-1)
					fn(ctx, i, at)
				})
			}
		}
	}
	wg.Wait()
	return started, skipped
}
