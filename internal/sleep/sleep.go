// Package sleep waits for a while unless a context ends first: the pause between retries, or
// a phase of a load run, that must not hold up a shutdown.
package sleep

import (
	"context"
	"time"
)

// For waits d, or until ctx ends: then it returns ctx's error. A ctx that has already ended
// wins over a d that is up (d ≤ 0), so that a retry loop stops rather than tries once more.
func For(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
