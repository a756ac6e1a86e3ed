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

// Process holds the flags of a long-running weft process itself (edge, proxy): its operator
// listener and what tunes its runtime.
type Process struct {
	OpsAddr    string
	GCPercent  int
	GOMAXPROCS int
}

// Flags adds --ops-addr, --gc-percent and --gomaxprocs to fs.
func (o *Process) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.OpsAddr, "ops-addr", "", "where to serve the operator's endpoints, never on the client port: /metrics, /healthz and /readyz in detail, the Go profiler (/debug/pprof/) and the node's own (an edge's /debug/teams); empty: nowhere. Bind it where only operators reach (docs/security.md)")
	fs.IntVar(&o.GCPercent, "gc-percent", 0, "the Go GC target of this process (GOGC); 0: GOGC's own (default 100); -1: off (an edge's --memory-budget, as GOMEMLIMIT, still bounds its heap)")
	fs.IntVar(&o.GOMAXPROCS, "gomaxprocs", 0, "Go's GOMAXPROCS for this process; 0: GOMAXPROCS's own (the CPUs this process may use)")
}

// Apply sets the GC target and GOMAXPROCS.
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
	return nil
}

// ServeOps serves the operator's endpoints on --ops-addr until ctx ends: h (the node's
// /metrics, /healthz, /readyz and its own) and the Go profiler, on a listener of their own so
// that none of it is ever on the client port. It returns the address it listens on, "" when
// --ops-addr is empty.
func (o *Process) ServeOps(ctx context.Context, h http.Handler, log *slog.Logger) (string, error) {
	if o.OpsAddr == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", o.OpsAddr)
	if err != nil {
		return "", fmt.Errorf("--ops-addr: %w", err)
	}
	hs := &http.Server{Handler: OpsMux(h), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln) // returns when the AfterFunc closes it
	context.AfterFunc(ctx, func() { hs.Close() })
	log.Info("operator endpoints listening", "addr", ln.Addr().String())
	return ln.Addr().String(), nil
}

// OpsMux is h with the Go profiler (net/http/pprof) under /debug/pprof/.
func OpsMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
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
