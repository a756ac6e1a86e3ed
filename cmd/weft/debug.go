package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"time"
)

// processOpts are the flags that tune a long-running weft process itself (edge, proxy).
type processOpts struct {
	debugAddr  string
	gcPercent  int
	gomaxprocs int
}

func (o *processOpts) flags(fs *flag.FlagSet) {
	fs.IntVar(&o.gcPercent, "gc-percent", 0, "the Go GC target of this process (GOGC); 0: GOGC's own (default 100); -1: off (an edge's --memory-budget, as GOMEMLIMIT, still bounds its heap)")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "where to serve the Go profiler (net/http/pprof); empty: nowhere")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "Go's GOMAXPROCS for this process; 0: GOMAXPROCS's own (the CPUs this process may use)")
}

// apply sets the GC target and serves the profiler until ctx ends.
func (o *processOpts) apply(ctx context.Context, log *slog.Logger) error {
	if o.gcPercent != 0 {
		debug.SetGCPercent(o.gcPercent)
	}
	if o.gomaxprocs < 0 {
		return fmt.Errorf("--gomaxprocs: want 0 (Go's own) or more, got %d", o.gomaxprocs)
	}
	if o.gomaxprocs > 0 {
		runtime.GOMAXPROCS(o.gomaxprocs)
	}
	return serveDebug(ctx, o.debugAddr, log)
}

// serveDebug serves the Go profiler (net/http/pprof) on addr until ctx ends: for an operator
// (or a load test) to see where a node spends its time. It is a separate listener so that it
// is never exposed on the client port. "" serves nothing.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Warn("profiler listening: not for the open network", "addr", ln.Addr().String())
	go hs.Serve(ln)
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	return nil
}
