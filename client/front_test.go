package client_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/weft-edge/weft/internal/testkit"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
)

// front is a region's public address, the one its clients dial: a TCP listener on loopback that
// copies bytes both ways to the region's edge, as a load balancer in front of a region's proxies
// does. A test breaks it the ways a region becomes unreachable for its clients, and mends it at
// the same address:
//
//   - down: the listener is closed and every connection through it cut, so dials are refused
//     (the region's proxies or load balancer are gone);
//   - gateway: every request is answered by the front itself, 502 with a plain-text body (a load
//     balancer with no healthy proxy behind it);
//   - silent: connections are accepted and never answered (a black hole).
//
// up undoes any of them.
type front struct {
	t    testkit.T
	addr string // host:port, the same for the front's whole life
	to   string // the edge's host:port
	url  string // ws://addr/ws, for Options.URLs

	accepted atomic.Int64 // connections accepted, in any mode

	mu    sync.Mutex
	ln    net.Listener // nil while down
	mode  string       // "" (forward), "gateway" or "silent"
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup // accept loops and pumps
}

// newFront listens on a fresh loopback port in front of e; it is closed at cleanup.
func newFront(t testkit.T, e *wstack.Edge) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &front{t: t, addr: ln.Addr().String(), to: e.Addr, conns: make(map[net.Conn]struct{})}
	f.url = "ws://" + f.addr + "/ws"
	f.serve(ln)
	t.Cleanup(f.down)
	return f
}

func (f *front) serve(ln net.Listener) {
	f.ln = ln
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // down closed the listener
			}
			f.accepted.Add(1)
			f.mu.Lock()
			if f.ln != ln { // down came between Accept and here
				f.mu.Unlock()
				c.Close()
				return
			}
			f.conns[c] = struct{}{}
			mode := f.mode
			f.mu.Unlock()
			f.wg.Go(func() { f.handle(c, mode) })
		}
	})
}

func (f *front) handle(c net.Conn, mode string) {
	defer f.drop(c)
	switch mode {
	case "silent":
		io.Copy(io.Discard, c) // until down cuts it
		return
	case "gateway":
		// Read the request first: a response written before it and a close could reach the
		// client as a reset instead of an answer.
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		const body = "no healthy upstream"
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"+
			"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		return
	}
	back, err := net.Dial("tcp", f.to)
	if err != nil {
		return
	}
	if !f.track(back) {
		back.Close()
		return
	}
	defer f.drop(back)
	done := make(chan struct{})
	go func() {
		io.Copy(back, c)
		// The client side ended: end the edge side too, which ends the copy below.
		back.Close()
		close(done)
	}()
	io.Copy(c, back)
	c.Close()
	<-done
}

// track adds a connection to those down cuts; false when down has begun.
func (f *front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *front) drop(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// down closes the listener and cuts every connection: dials to addr are refused until up.
func (f *front) down() {
	f.mu.Lock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	cut := f.conns
	f.conns = make(map[net.Conn]struct{})
	f.mu.Unlock()
	for c := range cut {
		c.Close()
	}
	f.wg.Wait()
}

// setMode cuts every connection and serves the next ones in mode ("" forwards again), listening
// again at addr if the front was down.
func (f *front) setMode(mode string) {
	f.t.Helper()
	f.down()
	// The same port again: Go listens with SO_REUSEADDR, so the connections just cut (in
	// TIME_WAIT) do not hold it. Another process taking it in between would fail the test here,
	// plainly.
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("front %s: listening again: %v", f.addr, err)
	}
	f.mu.Lock()
	f.mode = mode
	f.serve(ln)
	f.mu.Unlock()
}

// up forwards to the edge again.
func (f *front) up() { f.setMode("") }
