//go:build setuptrace

package proxy

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// A proxy built with -tags setuptrace times each stage of every tunnel's setup and, every
// 1,000 setups, appends each stage's p50 and p90 to the file named by $WEFT_SETUP_TRACE
// (default /tmp/weft-setup-trace.txt). It is how results/fronts found where the proxy's
// added setup latency goes; the default build compiles every mark away (setuptrace_off.go).

type setupClock struct {
	at [stageCount]time.Time
}

func (c *setupClock) mark(s setupStage) {
	if c != nil {
		c.at[s] = time.Now()
	}
}

// done records a setup that reached the client's 101.
func (c *setupClock) done() {
	if c == nil {
		return
	}
	c.mark(stageAnswered)
	traceMu.Lock()
	defer traceMu.Unlock()
	traceSetups = append(traceSetups, *c)
	if len(traceSetups) < 1000 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d setups\n", time.Now().UTC().Format(time.RFC3339), len(traceSetups))
	for s := stageAccepted + 1; s < stageCount; s++ {
		var ds []time.Duration
		for _, t := range traceSetups {
			if !t.at[s].IsZero() && !t.at[s-1].IsZero() {
				ds = append(ds, t.at[s].Sub(t.at[s-1]))
			}
		}
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		fmt.Fprintf(&b, "  %-16s p50 %8v  p90 %8v\n", stageNames[s], ds[len(ds)/2], ds[len(ds)*9/10])
	}
	traceSetups = traceSetups[:0]
	name := os.Getenv("WEFT_SETUP_TRACE")
	if name == "" {
		name = "/tmp/weft-setup-trace.txt"
	}
	if f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.WriteString(b.String())
		f.Close()
	}
}

var stageNames = [stageCount]string{"accepted", "head arrived", "head parsed", "token verified", "routed",
	"edge conn ready", "request sent", "edge answered", "101 forwarded"}

var (
	traceMu     sync.Mutex
	traceSetups []setupClock
)

type clockKey struct{}

func newSetupClock() *setupClock {
	c := &setupClock{}
	c.mark(stageAccepted)
	return c
}

func withSetupClock(ctx context.Context, c *setupClock) context.Context {
	return context.WithValue(ctx, clockKey{}, c)
}

func setupClockOf(ctx context.Context) *setupClock {
	c, _ := ctx.Value(clockKey{}).(*setupClock)
	return c
}
