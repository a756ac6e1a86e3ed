package index_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/index"
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
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Minute)
	buf := make([]byte, 1<<20)
	for {
		select {
		case <-built:
			t.Fatal("the typo fallback was built while the gate's only slot was held")
		default:
		}
		n := runtime.Stack(buf, true)
		if waitingIn(string(buf[:n]), "index.(*fuzzy).build(") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fallback build waiting on the gate after a minute:\n%s", buf[:n])
		}
		<-tick.C
	}
	if x.FuzzyReady() {
		t.Fatal("FuzzyReady while the build waits for its slot")
	}
	<-gate // the other build is done
	waitFuzzy(t, x)
	<-built
	if len(gate) != 0 {
		t.Fatalf("the build kept its slot after it finished (%d taken)", len(gate))
	}
}

// waitingIn reports whether a goroutine in dump is blocked in a select (on a gate, or its
// context) inside fn.
func waitingIn(dump, fn string) bool {
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, fn) {
			return true
		}
	}
	return false
}

// TestBuildGateHoldsThePrefixBuild: the prefix build waits for a slot of the node's BuildGate;
// the index is not ready until it gets one, and Close ends a build still waiting.
func TestBuildGateHoldsThePrefixBuild(t *testing.T) {
	srv := worldServer(t, "small")
	ids := srv.TeamIDs()
	gate := make(chan struct{}, 1)
	gate <- struct{}{}
	x := index.New(storeOf(t, srv, ids[0]), index.Config{NoFuzzy: true, BuildGate: gate})
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Minute)
	buf := make([]byte, 1<<20)
	for {
		select {
		case <-x.Ready():
			t.Fatal("the index was built while the gate's only slot was held")
		default:
		}
		n := runtime.Stack(buf, true)
		if waitingIn(string(buf[:n]), "index.(*Index).build(") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no prefix build waiting on the gate after a minute:\n%s", buf[:n])
		}
		<-tick.C
	}
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
