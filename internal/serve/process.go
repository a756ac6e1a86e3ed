// Package serve is what weft's long-running commands (weft edge, weft proxy, weft-proxy) share
// around their HTTP server: the flags that tune the process itself, and serving a handler
// until the command's context ends.
package serve

import (
	"context"
	"errors"
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

// Process holds the flags that tune a long-running weft process itself (edge, proxy).
type Process struct {
	DebugAddr  string
	GCPercent  int
	GOMAXPROCS int
}

// Flags adds --gc-percent, --debug-addr and --gomaxprocs to fs.
func (o *Process) Flags(fs *flag.FlagSet) {
	fs.IntVar(&o.GCPercent, "gc-percent", 0, "the Go GC target of this process (GOGC); 0: GOGC's own (default 100); -1: off (an edge's --memory-budget, as GOMEMLIMIT, still bounds its heap)")
	fs.StringVar(&o.DebugAddr, "debug-addr", "", "where to serve the Go profiler (net/http/pprof); empty: nowhere")
	fs.IntVar(&o.GOMAXPROCS, "gomaxprocs", 0, "Go's GOMAXPROCS for this process; 0: GOMAXPROCS's own (the CPUs this process may use)")
}

// Apply sets the GC target and GOMAXPROCS and serves the profiler until ctx ends.
func (o *Process) Apply(ctx context.Context, log *slog.Logger) error {
	if o.GCPercent != 0 {
		debug.SetGCPercent(o.GCPercent)
	}
	if o.GOMAXPROCS < 0 {
		return fmt.Errorf("--gomaxprocs: want 0 (Go's own) or more, got %d", o.GOMAXPROCS)
	}
	if o.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(o.GOMAXPROCS)
	}
	return serveDebug(ctx, o.DebugAddr, log)
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

// Until serves h on ln until ctx ends or serving fails, then calls stop with a context
// bounded by grace; it returns the first error that is not the server's own closing.
func Until(ctx context.Context, h http.Handler, ln net.Listener, grace time.Duration,
	stop func(context.Context, *http.Server) error) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-errc: // serving failed: still stop what runs behind the handler
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if serr := stop(sctx, hs); err == nil {
		err = serr
	}
	if err == nil {
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
			err = serr
		}
	}
	return err
}
