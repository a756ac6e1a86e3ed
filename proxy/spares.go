package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/weft-edge/weft/internal/ring"
)

// spares keeps a few TCP connections to each edge the proxy sends clients to, dialed ahead of
// need, so that setting up a tunnel does not wait for a connect: on loopback or a LAN the
// connect and its wake-up were ~50 µs of the ~225 µs the proxy added to a setup (a Go execution
// trace of the fronts scenario, results/fronts). A spare is younger than maxAge, well inside
// the edge's own 10 s wait for a request head, and checked for a close by the edge before use;
// a spare that fails before the edge answered is retried once on a fresh connection, so a
// spare the edge had just closed never counts against the edge.
//
// Spares follow demand: an edge's spares are kept while clients were sent to it within
// idleFor and it is a serving member, by one keeper goroutine per edge (owned by the Server's
// wait group), and closed after: a draining edge's http.Server waits up to 5 s for a
// connection that has sent nothing, and must not wait for spares.
type spares struct {
	s       *Server
	keep    int
	maxAge  time.Duration
	idleFor time.Duration

	mu    sync.Mutex
	edges map[string]*spareSet // by address
}

type spareSet struct {
	conns []spare       // oldest first
	asked time.Time     // the last take
	wake  chan struct{} // a take asks the keeper to refill
}

type spare struct {
	c  net.Conn
	at time.Time
}

func newSpares(s *Server, keep int) *spares {
	return &spares{s: s, keep: keep, maxAge: 5 * time.Second, idleFor: 30 * time.Second, edges: map[string]*spareSet{}}
}

// take returns a spare connection to addr that is young and still open, or nil. The caller
// calls refill once the client's setup is done.
func (p *spares) take(addr string) net.Conn {
	if p == nil {
		return nil
	}
	now := time.Now()
	var c net.Conn
	var stale []net.Conn
	p.mu.Lock()
	set := p.edges[addr]
	start := set == nil
	if start {
		set = &spareSet{wake: make(chan struct{}, 1)}
		p.edges[addr] = set
	}
	set.asked = now
	for len(set.conns) > 0 && c == nil {
		sp := set.conns[len(set.conns)-1] // the youngest
		set.conns = set.conns[:len(set.conns)-1]
		if now.Sub(sp.at) < p.maxAge {
			c = sp.c
		} else {
			stale = append(stale, sp.c)
		}
	}
	p.mu.Unlock()
	for _, sc := range stale {
		sc.Close()
	}
	if start {
		if p.s.track() {
			go func() {
				defer p.s.wg.Done()
				p.keeper(addr, set)
			}()
		} else {
			p.forget(addr, set)
		}
	}
	if c != nil && !stillOpen(c) {
		c.Close()
		c = nil
	}
	return c
}

// refill asks addr's keeper to have keep spares ready again. It is called after a setup, not
// in take: the keeper's dial (and the edge's accept of it) during the setup competed with the
// setup itself for the CPU, ~10 µs of the proxy's added setup on 2 cores.
func (p *spares) refill(addr string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	set := p.edges[addr]
	p.mu.Unlock()
	if set != nil {
		select {
		case set.wake <- struct{}{}:
		default:
		}
	}
}

// forget drops set, closing its spares, unless a newer set took its place.
func (p *spares) forget(addr string, set *spareSet) {
	p.mu.Lock()
	if p.edges[addr] == set {
		delete(p.edges, addr)
	}
	conns := set.conns
	set.conns = nil
	p.mu.Unlock()
	for _, sp := range conns {
		sp.c.Close()
	}
}

// keeper keeps addr's spares: keep of them, none older than maxAge, until no client was sent
// to addr for idleFor or the server stops. A failed dial waits for the next take or period:
// the edge may be gone, and the clients' own dials say so.
func (p *spares) keeper(addr string, set *spareSet) {
	defer p.forget(addr, set)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-p.s.ctx.Done():
			return
		case <-set.wake:
		case <-t.C:
		}
		now := time.Now()
		if !p.serving(addr) { // gone, or draining: its server must not wait on spares to stop
			return
		}
		p.mu.Lock()
		if now.Sub(set.asked) > p.idleFor {
			p.mu.Unlock()
			return
		}
		var stale []net.Conn
		fresh := set.conns[:0]
		for _, sp := range set.conns {
			if now.Sub(sp.at) < p.maxAge {
				fresh = append(fresh, sp)
			} else {
				stale = append(stale, sp.c)
			}
		}
		set.conns = fresh
		need := p.keep - len(set.conns)
		p.mu.Unlock()
		for _, c := range stale {
			c.Close()
		}
		for range need {
			c, err := p.s.dialEdge(addr)
			if err != nil {
				break
			}
			p.mu.Lock()
			set.conns = append(set.conns, spare{c: c, at: time.Now()})
			p.mu.Unlock()
		}
		t.Reset(p.maxAge / 2)
	}
}

// serving reports whether an edge at addr is in the proxy's view and serving. (Spares are
// made only for edges clients are sent to; a static edge counts as serving.)
func (p *spares) serving(addr string) bool {
	for _, a := range p.s.members.View().Edges {
		if a.Addr == addr {
			return a.State == "" || a.State == ring.EdgeServing
		}
	}
	return false
}

// dialEdge connects to the edge at addr within the dial timeout; the dial does not follow any
// client (a client that gave up must not make its edge look unreachable), only the server.
func (s *Server) dialEdge(addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	defer cancel()
	c, err := s.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c = withRawIO(c)
	if s.cfg.EdgeTLS == nil {
		return c, nil
	}
	// The handshake is part of the dial, so that a spare is ready to carry a head at once and
	// an edge with a bad certificate fails here, like one that refuses the connection.
	tc := s.cfg.EdgeTLS
	if tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tlsc := tls.Client(c, tc)
	if err := tlsc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS to edge %s: %w", addr, err)
	}
	return tlsc, nil
}

// edgeScheme is the scheme of the proxy's HTTP requests to edges.
func (s *Server) edgeScheme() string {
	if s.cfg.EdgeTLS != nil {
		return "https"
	}
	return "http"
}
