package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/pubsub"
)

// The control endpoint of `weft dev --regions`: a dev-only HTTP listener that kills a region's
// edges as a crash would (listeners and connections cut, no goodbye, announcements stopped)
// and starts new ones, so that a failover can be watched, and timed by `weft-loadtest regions`,
// from outside the process. Production has no such thing: there, edges die on their own.

// devEdges are the edges of one site (a region, or the ring of --edges N). Each start makes
// new lives with new names (edge-b-3, edge-b-4 after edge-b-1 and edge-b-2 were killed): a
// replacement pod gets a new name too, and an old name is taken again only once every view
// has let it go.
type devEdges struct {
	ctx     context.Context // the stack's: every life ends with it
	g       *errgroup.Group // owns the lives' goroutines
	site    devSite
	o       edgeOpts
	connect func(name string) (*pubsub.Bus, error)
	release func(*pubsub.Bus) // closes a bus the site made (not the process's)
	log     *slog.Logger
	stdout  io.Writer
	indent  string

	mu    sync.Mutex
	lives []*devEdge
	born  int // lives started so far: the next is named prefix(born+1)
}

// devEdge is one life of an edge.
type devEdge struct {
	name   string
	srv    *edge.Server
	ln     *cutListener
	bus    *pubsub.Bus
	killed atomic.Bool
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine has returned
}

// start starts the site's --edges edges, new lives, each on its own NATS connection and a
// free port, and prints them. Errors leave the lives already started running (g stops them).
func (d *devEdges) start() ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ctx.Err(); err != nil {
		return nil, err
	}
	if len(d.lives) > 0 {
		return nil, fmt.Errorf("region %s has %d edges running: kill them first", d.site.region, len(d.lives))
	}
	var names []string
	for range d.site.edges {
		d.born++
		eo := d.o
		eo.node = fmt.Sprintf("%s%d", d.site.prefix, d.born)
		eo.region, eo.originURL = d.site.region, d.site.originURL
		ebus, err := d.connect("weft-dev-" + eo.node)
		if err != nil {
			return names, err
		}
		addr := d.site.edgeAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		srv, eln, err := eo.listen(addr, ebus, d.log)
		if err != nil {
			d.release(ebus)
			return names, err
		}
		if d.site.edgeAddr != "" {
			d.site.edgeAddr = eln.Addr().String() // the next life takes this port again
		}
		if d.stdout != nil {
			fmt.Fprintf(d.stdout, "%s%-7s http://%s\n", d.indent, eo.node, eln.Addr())
		}
		var h http.Handler = srv
		if d.site.front != nil && d.site.proxyAddr == "" && d.site.proxyLn == nil {
			h = d.site.front(h) // no proxy: the edge is the site's public listener
		}
		ectx, cancel := context.WithCancel(d.ctx)
		e := &devEdge{name: eo.node, srv: srv, ln: newCutListener(eln), bus: ebus, cancel: cancel, done: make(chan struct{})}
		d.lives = append(d.lives, e)
		names = append(names, e.name)
		d.g.Go(func() error {
			defer close(e.done)
			defer cancel()
			defer d.release(ebus)
			err := serveEdge(ectx, srv, h, e.ln, eo.drain, d.log)
			if e.killed.Load() {
				return nil // its end was the kill's, not a failure of the stack
			}
			return err
		})
	}
	return names, nil
}

// ops serves the operator's endpoints of the site's first live edge (weft dev's single edge,
// whose ops listener outlives each life), or 503 while none runs.
func (d *devEdges) ops() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		var srv *edge.Server
		if len(d.lives) > 0 {
			srv = d.lives[0].srv
		}
		d.mu.Unlock()
		if srv == nil {
			http.Error(w, "no edge running (killed through the control endpoint)", http.StatusServiceUnavailable)
			return
		}
		srv.OpsHandler().ServeHTTP(w, r)
	})
}

// kill kills every live edge of the site as a crash would: its listener and connections cut
// at once (clients see their connection drop, no goodbye), its NATS connection closed (its
// announcements stop; the proxies notice by probing it). It returns once their goroutines
// have returned.
func (d *devEdges) kill(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lives) == 0 {
		return nil, fmt.Errorf("region %s has no edge running", d.site.region)
	}
	var names []string
	for _, e := range d.lives {
		e.killed.Store(true)
		e.ln.cut()
		d.release(e.bus)
		e.cancel()
		names = append(names, e.name)
	}
	for _, e := range d.lives {
		select {
		case <-e.done:
		case <-ctx.Done():
			return names, ctx.Err()
		}
	}
	d.lives = nil
	return names, nil
}

// cutListener tracks the connections it accepted (hijacked WebSockets included: a hijack
// hands back the same net.Conn) so that cut can close them all with the listener.
type cutListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*cutConn]struct{}
	dead  bool
}

func newCutListener(ln net.Listener) *cutListener {
	return &cutListener{Listener: ln, conns: map[*cutConn]struct{}{}}
}

func (l *cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &cutConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead { // accepted as the cut ran: it goes too
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// cut closes every connection the listener accepted that is still open, then the listener
// (one accepted meanwhile is closed by Accept). In that order: the listener's close ends the
// http.Server's Serve, which starts the edge's drain, and a goodbye must not reach a client
// whose connection a crash would have cut.
func (l *cutListener) cut() {
	l.mu.Lock()
	l.dead = true
	conns := l.conns
	l.conns = map[*cutConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	_ = l.Listener.Close()
}

type cutConn struct {
	net.Conn
	l    *cutListener
	once sync.Once
}

func (c *cutConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// devControl serves the control endpoint for the regions' edges (weft dev's single edge is
// the one edge of region "default"):
//
//	GET  /regions                 every region and its live edges
//	POST /regions/{name}/kill     kill the region's edges (409 when none runs)
//	POST /regions/{name}/start    start new edges in the region (409 while some run)
//	POST /regions/{name}/restart  kill, then start
type devControl struct {
	order   []string
	regions map[string]*devEdges
}

func (c *devControl) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /regions", func(w http.ResponseWriter, r *http.Request) {
		type region struct {
			Name  string   `json:"name"`
			Edges []string `json:"edges"`
		}
		out := []region{}
		for _, name := range c.order {
			d := c.regions[name]
			d.mu.Lock()
			rg := region{Name: name, Edges: []string{}}
			for _, e := range d.lives {
				rg.Edges = append(rg.Edges, e.name)
			}
			d.mu.Unlock()
			out = append(out, rg)
		}
		writeControl(w, http.StatusOK, map[string]any{"regions": out})
	})
	act := func(verb string, do func(*devEdges, context.Context) ([]string, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			d, ok := c.regions[r.PathValue("name")]
			if !ok {
				writeControl(w, http.StatusNotFound, map[string]any{"error": "no_region", "regions": c.order})
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			defer cancel()
			names, err := do(d, ctx)
			if err != nil {
				writeControl(w, http.StatusConflict, map[string]any{"error": err.Error(), verb: names})
				return
			}
			writeControl(w, http.StatusOK, map[string]any{"region": d.site.region, verb: names})
		}
	}
	mux.HandleFunc("POST /regions/{name}/kill", act("killed", (*devEdges).kill))
	mux.HandleFunc("POST /regions/{name}/start", act("started", func(d *devEdges, _ context.Context) ([]string, error) { return d.start() }))
	mux.HandleFunc("POST /regions/{name}/restart", act("started", func(d *devEdges, ctx context.Context) ([]string, error) {
		if _, err := d.kill(ctx); err != nil {
			return nil, err
		}
		return d.start()
	}))
	return mux
}

func writeControl(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveControl serves c on a free port of host in g until ctx ends, and prints its URL.
func serveControl(ctx context.Context, g *errgroup.Group, c *devControl, host string, stdout io.Writer, what string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  control http://%s   (dev only: POST %s)\n", ln.Addr(), what)
	// Its handlers may start lives in g: serve.Until waits for them before this returns.
	g.Go(func() error {
		return serve.Until(ctx, c.handler(), ln, 35*time.Second, func(sctx context.Context, hs *http.Server) error {
			return hs.Shutdown(sctx)
		})
	})
	return nil
}
