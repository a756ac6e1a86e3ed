package edge

import (
	"context"
	"testing"
	"time"
)

// waitDone runs t.wait on a goroutine and returns a channel closed when it returns.
func waitDone(t *throttle) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		t.wait(context.Background())
		close(done)
	}()
	return done
}

func stillPaused(tb testing.TB, done <-chan struct{}, why string) {
	tb.Helper()
	select {
	case <-done:
		tb.Fatalf("reads resumed %s", why)
	default:
	}
}

// TestThrottleOverlappingReasons: two reasons overlap; clearing one leaves reads paused, and
// they resume only when the second clears too, in either order.
func TestThrottleOverlappingReasons(t *testing.T) {
	for _, order := range [][2]string{{pauseRequests, pauseOutbound}, {pauseOutbound, pauseRequests}} {
		var th throttle
		th.pause(pauseRequests, time.Time{})
		th.pause(pauseOutbound, time.Time{})
		done := waitDone(&th)
		th.resume(order[0])
		// The waiter woke on the first resume; it must have gone back to waiting.
		if n, _, _ := th.active(time.Now()); n != 1 {
			t.Fatalf("%d reasons held after resuming %s", n, order[0])
		}
		stillPaused(t, done, "with "+order[1]+" still held")
		th.resume(order[1])
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("reads still paused after both reasons cleared (%v)", order)
		}
	}
}

// TestThrottleTimedReasons: a timed reason ends by itself; a held-until-resumed one is not
// shortened by a deadline; a later deadline extends an earlier one.
func TestThrottleTimedReasons(t *testing.T) {
	var th throttle
	now := time.Now()
	th.pause(pauseRequests, now.Add(time.Hour))
	th.pause(pauseRequests, now.Add(2*time.Hour))
	if n, next, _ := th.active(now); n != 1 || !next.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("extended deadline: %d reasons, next %v", n, next.Sub(now))
	}
	if n, _, _ := th.active(now.Add(3 * time.Hour)); n != 0 {
		t.Fatal("a timed reason outlived its deadline")
	}
	th.pause(pauseOutbound, time.Time{})
	th.pause(pauseOutbound, now.Add(time.Millisecond))
	if n, _, _ := th.active(now.Add(time.Hour)); n != 1 {
		t.Fatal("a deadline shortened a pause held until resume")
	}
	// A short timed pause with a waiter: wait returns once it passes.
	var th2 throttle
	th2.pause(pauseRequests, time.Now().Add(20*time.Millisecond))
	th2.pause(pauseOutbound, time.Now().Add(40*time.Millisecond))
	select {
	case <-waitDone(&th2):
	case <-time.After(10 * time.Second):
		t.Fatal("timed pauses never ended")
	}
	if n, _, _ := th2.active(time.Now()); n != 0 {
		t.Fatalf("wait returned with %d reasons held", n)
	}
}
