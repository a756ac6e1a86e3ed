package serve

import (
	"context"
	"flag"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestProcess: --gomaxprocs and --gc-percent set the process's GOMAXPROCS and GC target;
// their zero values leave them as they are, and a negative GOMAXPROCS is refused.
func TestProcess(t *testing.T) {
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	t.Cleanup(func() {
		runtime.SetDefaultGOMAXPROCS() // back to Go's own, which also follows CPU limit changes
		debug.SetGCPercent(gc)
	})
	apply := func(args ...string) error {
		t.Helper()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var o Process
		o.Flags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return o.Apply(context.Background(), slog.New(slog.DiscardHandler))
	}
	if err := apply("--gomaxprocs", "7", "--gc-percent", "250"); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != 7 {
		t.Fatalf("GOMAXPROCS %d after --gomaxprocs 7", n)
	}
	if p := debug.SetGCPercent(250); p != 250 {
		t.Fatalf("GC percent %d after --gc-percent 250", p)
	}
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != 7 {
		t.Fatalf("GOMAXPROCS %d after no flag, want it left at 7", n)
	}
	if p := debug.SetGCPercent(250); p != 250 {
		t.Fatalf("GC percent %d after no flag, want it left at 250", p)
	}
	if err := apply("--gomaxprocs", "-2"); err == nil {
		t.Fatal("--gomaxprocs -2 accepted")
	}
}
