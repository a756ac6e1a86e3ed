package main

import (
	"context"
	"flag"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestProcessOpts: --gomaxprocs and --gc-percent set the process's GOMAXPROCS and GC target;
// their zero values leave Go's own.
func TestProcessOpts(t *testing.T) {
	procs, gc := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	})
	apply := func(args ...string) {
		t.Helper()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var o processOpts
		o.flags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := o.apply(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	apply("--gomaxprocs", "7", "--gc-percent", "250")
	if n := runtime.GOMAXPROCS(0); n != 7 {
		t.Fatalf("GOMAXPROCS %d after --gomaxprocs 7", n)
	}
	if p := debug.SetGCPercent(250); p != 250 {
		t.Fatalf("GC percent %d after --gc-percent 250", p)
	}
	apply()
	if n := runtime.GOMAXPROCS(0); n != 7 {
		t.Fatalf("GOMAXPROCS %d after no flag, want it left at 7", n)
	}
}
