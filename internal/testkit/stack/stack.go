// Package stack runs weft's servers in the test's process on top of testkit/backend: edge
// nodes behind loopback listeners that can be stopped, crashed and restarted, and proxies.
// It imports edge and proxy, so only external test packages (package x_test) and packages
// that neither edge nor proxy import may use it; edge's own tests build their Server from
// testkit/backend directly. Tests only.
package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/proxy"
	"github.com/weft-edge/weft/pubsub"
)

// Keys is a token issuer and verifier from secret (at least 16 bytes).
func Keys(t testkit.T, secret string) *token.Keys {
	t.Helper()
	k, err := token.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// EdgeConfig is the edge configuration tests start from: the node loads teams from o, follows
// and replays them from bus, verifies tokens with keys, has no connection quotas (tests dial
// many sessions at once), and drains within 300 ms.
func EdgeConfig(o *backend.Origin, bus *pubsub.Bus, keys *token.Keys, node string) edge.Config {
	return edge.Config{Cache: cache.Config{Origin: o.Client, Feed: bus}, Replay: bus, Tokens: keys, Node: node,
		DrainSpread: 300 * time.Millisecond, ConnectRate: -1, TeamConnectRate: -1}
}

// Edge is an edge node behind a loopback listener of its own. The listener outlives the node:
// Stop and then Start is a restart at the same address (a client reconnects and meets a new
// node with an empty cache), and while no node serves, every request gets 503 overloaded.
// The WebSocket connections it hijacked are kept, so that Crash can cut them.
type Edge struct {
	t      testkit.T
	Addr   string // host:port
	OpsURL string // http://host:port of the running node's operator endpoints (OpsHandler)
	config func(addr string) edge.Config

	node    atomic.Pointer[edge.Server] // the node; nil when stopped
	serving atomic.Bool                 // false after Crash: requests get 503
	hs      *http.Server
	closed  atomic.Bool

	requests   atomic.Int64
	handshakes atomic.Int64

	mu          sync.Mutex
	conns       []net.Conn
	onHandshake func()
}

// StartEdge listens on a random loopback port and starts a node there with config(addr), addr
// being that host:port (a clustered edge announces it); every Start calls config again. At
// cleanup the node is stopped and the listener closed.
func StartEdge(t testkit.T, config func(addr string) edge.Config) *Edge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &Edge{t: t, Addr: ln.Addr().String(), config: config}
	e.hs = &http.Server{Handler: http.HandlerFunc(e.serve), ConnState: e.connState, ReadHeaderTimeout: 10 * time.Second}
	go e.hs.Serve(ln) // returns when Close closes the listener
	ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := e.node.Load(); n != nil {
			n.OpsHandler().ServeHTTP(w, r)
			return
		}
		http.Error(w, "stopped", http.StatusServiceUnavailable)
	}))
	e.OpsURL = ops.URL
	t.Cleanup(ops.Close)
	e.Start()
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("%v", err)
		}
		e.Close()
	})
	return e
}

// URL is the edge's base URL with scheme ("http" or "ws").
func (e *Edge) URL(scheme string) string { return scheme + "://" + e.Addr }

// Server is the running node, nil when stopped.
func (e *Edge) Server() *edge.Server { return e.node.Load() }

// Requests counts every request that reached the listener; Handshakes those to /ws.
func (e *Edge) Requests() int64   { return e.requests.Load() }
func (e *Edge) Handshakes() int64 { return e.handshakes.Load() }

// OnHandshake sets f to be called at every /ws request before it is served (nil: none).
func (e *Edge) OnHandshake(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onHandshake = f
}

// Start starts a new node; the one before must have been stopped.
func (e *Edge) Start() {
	e.t.Helper()
	n, err := edge.New(e.config(e.Addr))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.node.Store(n)
	e.serving.Store(true)
}

// Crash makes the node vanish as a killed process would for its clients: from now on requests
// get 503, and every WebSocket it holds is cut without a goodbye. The node itself still runs
// (announcing, holding its teams) until Stop, so a test can first cut what else it must.
func (e *Edge) Crash() {
	e.serving.Store(false)
	e.mu.Lock()
	cut := e.conns
	e.conns = nil
	e.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// Stop shuts the node down (draining its sessions, unless Crash cut them first). While it
// drains, the node still answers (a draining edge refuses new sessions with its own 503 and
// Weft-Refused, which a proxy fails over on); after, the listener stays and requests get 503
// until Start.
func (e *Edge) Stop() error {
	n := e.node.Load()
	if n == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := n.Shutdown(ctx)
	e.serving.Store(false)
	e.node.CompareAndSwap(n, nil)
	if err != nil {
		// What the node still waits for is in the goroutines: a shutdown that times out is a
		// goroutine without an owner that stops it, or one whose stop does not reach it.
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		return fmt.Errorf("edge %s shutdown: %w; goroutines:\n%s", e.Addr, err, b.String())
	}
	return nil
}

// Close closes the listener and every connection it accepted: the address refuses from now on.
func (e *Edge) Close() {
	if e.closed.CompareAndSwap(false, true) {
		e.hs.Close()
	}
}

func (e *Edge) serve(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	if r.URL.Path == "/ws" {
		e.handshakes.Add(1)
		e.mu.Lock()
		hook := e.onHandshake
		e.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	n := e.node.Load()
	if n == nil || !e.serving.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"ok": false,
			"error": map[string]any{"code": "overloaded", "message": "restarting"}})
		return
	}
	n.ServeHTTP(w, r)
}

func (e *Edge) connState(c net.Conn, st http.ConnState) {
	if st == http.StateHijacked {
		// A handshake that passed the serving check before a Crash hijacks its connection
		// after Crash took the list: it is cut here, as the killed process would have cut it.
		// (Crash clears serving before it takes the list, so one of the two cuts it.)
		if !e.serving.Load() {
			c.Close()
			return
		}
		e.mu.Lock()
		e.conns = append(e.conns, c)
		e.mu.Unlock()
	}
}

// Proxy is a proxy server behind a loopback listener.
type Proxy struct {
	Server *proxy.Server
	URL    string // http://host:port
	OpsURL string // http://host:port of its operator endpoints (OpsHandler)
	hs     *http.Server
}

// StartProxy starts a proxy with cfg; it is shut down at cleanup.
func StartProxy(t testkit.T, cfg proxy.Config) *Proxy {
	t.Helper()
	srv, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Server: srv, URL: "http://" + ln.Addr().String(),
		hs: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}}
	go p.hs.Serve(srv.Upgrades(ln)) // returns when the cleanup shuts the server down
	ops := httptest.NewServer(srv.OpsHandler())
	p.OpsURL = ops.URL
	t.Cleanup(ops.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.hs.Shutdown(ctx)
		srv.Shutdown(ctx)
	})
	return p
}
