//go:build !setuptrace

package proxy

import "context"

// setupClock times a tunnel's setup in a build with -tags setuptrace (setuptrace.go); here
// it is nothing, and its marks compile away.
type setupClock struct{}

func (*setupClock) mark(setupStage) {}
func (*setupClock) done()           {}

func newSetupClock() *setupClock                                        { return nil }
func withSetupClock(ctx context.Context, _ *setupClock) context.Context { return ctx }
func setupClockOf(context.Context) *setupClock                          { return nil }
