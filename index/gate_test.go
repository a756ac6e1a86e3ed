package index_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
)

// TestFuzzyGateHoldsTheFallbackBuild: while every slot of the node's gate is taken, a new
// index serves its prefix path but does not build its typo fallback; the build starts when a
// slot frees.
func TestFuzzyGateHoldsTheFallbackBuild(t *testing.T) {
	srv := worldServer(t, "small")
	team := srv.TeamIDs()[0]
	gate := make(chan struct{}, 1)
	gate <- struct{}{} // another build holds the only slot
	built := make(chan struct{})
	x := index.New(storeOf(t, srv, team), index.Config{FuzzyGate: gate, OnBuild: func(_ string, fuzzy bool, _ time.Duration) {
		if fuzzy {
			close(built)
		}
	}})
	defer x.Close()
	<-x.Ready()
	// The fallback's goroutine must be parked on the gate, and nothing built.
	waitParked(t, "index.(*fuzzy).build(", built, "the typo fallback was built while the gate's only slot was held")
	if x.FuzzyReady() {
		t.Fatal("FuzzyReady while the build waits for its slot")
	}
	<-gate // the other build is done
	testkit.EventuallyWithin(t, time.Minute, x.FuzzyReady, "the typo fallback")
	<-built
	if len(gate) != 0 {
		t.Fatalf("the build kept its slot after it finished (%d taken)", len(gate))
	}
}

// TestBuildGateHoldsThePrefixBuild: the prefix build waits for a slot of the node's BuildGate;
// the index is not ready until it gets one, and Close ends a build still waiting.
func TestBuildGateHoldsThePrefixBuild(t *testing.T) {
	srv := worldServer(t, "small")
	ids := srv.TeamIDs()
	gate := make(chan struct{}, 1)
	gate <- struct{}{}
	x := index.New(storeOf(t, srv, ids[0]), index.Config{NoFuzzy: true, BuildGate: gate})
	waitParked(t, "index.(*Index).build(", x.Ready(), "the index was built while the gate's only slot was held")
	<-gate
	<-x.Ready()
	x.Close()
	if len(gate) != 0 {
		t.Fatalf("the build kept its slot (%d taken)", len(gate))
	}
	// A build still waiting when its index closes gives up without taking a slot.
	gate <- struct{}{}
	y := index.New(storeOf(t, srv, ids[1]), index.Config{NoFuzzy: true, BuildGate: gate})
	y.Close() // returns once the build goroutine is gone
	if len(gate) != 1 {
		t.Fatalf("gate has %d taken after a waiting build was closed, want the holder's 1", len(gate))
	}
}

// waitParked waits until a goroutine is blocked in a select (on a gate, or its context)
// inside fn, by goroutine dumps: a positive sign that the build waits, which no amount of
// waiting for "not yet" could give. It fails with early if early closes first.
func waitParked(t *testing.T, fn string, early <-chan struct{}, why string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	var n int
	testkit.EventuallyOr(t, time.Minute, func() bool {
		select {
		case <-early:
			t.Fatal(why)
		default:
		}
		n = runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, fn) {
				return true
			}
		}
		return false
	}, "a goroutine waiting in "+fn, func() { t.Logf("goroutines:\n%s", buf[:n]) })
}
