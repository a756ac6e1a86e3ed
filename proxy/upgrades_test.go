package proxy_test

// The WebSocket fast path (Upgrades) and the spare connections to edges (spares.go): what they
// must not change about what clients and edges see.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/proxy"
)

// upgradeRequest is a WebSocket upgrade to /ws with tok.
func upgradeRequest(host, tok string) string {
	return fmt.Sprintf("GET /ws HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", host, tok)
}

// healthz asks /healthz on c (read through br) and reads the whole answer: a request net/http
// serves, on a connection kept alive after it.
func healthz(t *testing.T, c net.Conn, br *bufio.Reader, host string) {
	t.Helper()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d", resp.StatusCode)
	}
}

// TestUpgradesHandsOtherRequestsToHTTP: a connection whose first request is not a /ws
// upgrade is served by net/http with its bytes intact, kept alive, and a /ws upgrade later on
// that connection still reaches the edge; a path that only starts with /ws is not /ws.
func TestUpgradesHandsOtherRequestsToHTTP(t *testing.T) {
	edgeAddr := fakeEdge(t, nil)
	paddr, keys := staticProxy(t, edgeAddr)
	tok, err := keys.Issue("T1", "U1", time.Hour)
	must(t, err)
	c, err := net.Dial("tcp", paddr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/healthz", "/wsx"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, paddr)
		resp, err := http.ReadResponse(br, nil)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]int{"/healthz": 200, "/wsx": 404}[path]
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
	io.WriteString(c, upgradeRequest(paddr, tok))
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("an upgrade after two requests on a kept-alive connection: %d, want 101", resp.StatusCode)
	}
	io.WriteString(c, "hi")
	c.(*net.TCPConn).CloseWrite()
	if rest, _ := io.ReadAll(br); string(rest) != "BYE:hi" {
		t.Fatalf("through the tunnel: %q, want BYE:hi", rest)
	}
}

// TestUpgradesRefusesBadHeads: a first request to /ws that is not HTTP, or whose head passes
// the bound, is answered 400 or 431 and closed, as net/http answers such requests.
func TestUpgradesRefusesBadHeads(t *testing.T) {
	edgeAddr := fakeEdge(t, nil)
	paddr, _ := staticProxy(t, edgeAddr)
	for _, tc := range []struct {
		name, req string
		want      int
	}{
		{"a header line without a colon", "GET /ws HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n", 400},
		{"no HTTP version", "GET /ws nonsense\r\n\r\n", 400},
		{"a head of 100 KiB", "GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", 431},
		{"HTTP/1.1 without a Host", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400},
		{"a Host that is no host", "GET /ws HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400},
		{"HTTP/3.0", "GET /ws HTTP/3.0\r\nHost: x\r\n\r\n", 505},
	} {
		c, err := net.Dial("tcp", paddr)
		must(t, err)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go io.WriteString(c, tc.req) // the proxy may stop reading before the end
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if resp.StatusCode != tc.want || !resp.Close {
			t.Errorf("%s: %d (close %v), want %d and the connection closed", tc.name, resp.StatusCode, resp.Close, tc.want)
		}
		c.Close()
	}
}

// idleEdge is a fake edge that upgrades every request and keeps the connections that have
// sent nothing yet (the proxy's spares), so a test can close them from the edge's side as an
// edge's own header timeout would.
type idleEdge struct {
	addr string
	mu   sync.Mutex
	idle map[net.Conn]bool
}

func newIdleEdge(t *testing.T) *idleEdge {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	e := &idleEdge{addr: ln.Addr().String(), idle: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.idle[c] = true
			e.mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := br.Peek(1); err != nil {
					return
				}
				e.mu.Lock()
				delete(e.idle, c)
				e.mu.Unlock()
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				io.Copy(io.Discard, br)
			}()
		}
	}()
	return e
}

// closeIdle closes the connections that have sent nothing and says how many there were.
func (e *idleEdge) closeIdle() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.idle)
	for c := range e.idle {
		c.Close()
		delete(e.idle, c)
	}
	return n
}

func (e *idleEdge) idleCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.idle)
}

// TestSparesClosedByTheEdge: the proxy keeps spare connections to an edge it uses; when the
// edge closes them (its wait for a request head ran out), the next client still gets through
// on a fresh connection, and the edge is not taken for dead.
func TestSparesClosedByTheEdge(t *testing.T) {
	e := newIdleEdge(t)
	keys, err := token.New([]byte(testSecret))
	must(t, err)
	p := wstack.StartProxy(t, proxy.Config{Tokens: keys, SpareConns: 3, Static: []ring.Announcement{{Node: "fake", Addr: e.addr}}})
	paddr := strings.TrimPrefix(p.URL, "http://")
	tok, err := keys.Issue("T1", "U1", time.Hour)
	must(t, err)
	upgrade := func() {
		t.Helper()
		c, err := net.Dial("tcp", paddr)
		must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, upgradeRequest(paddr, tok))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		must(t, err)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %d, want 101", resp.StatusCode)
		}
	}
	upgrade() // the first client to the edge: its spares are dialed after
	testkit.Eventually(t, func() bool { return e.idleCount() >= 3 }, "the proxy's 3 spares idle at the edge")
	if n := e.closeIdle(); n < 3 {
		t.Fatalf("closed %d spares", n)
	}
	for range 4 { // more than the spares: every one of them was closed
		upgrade()
	}
	if down := p.Server.Membership().View().Down; len(down) > 0 {
		t.Fatalf("after its spares were closed the edge is marked down: %v", down)
	}
}

// TestUpgradesShutdownClosesWaitingConnections: a connection that has sent no request yet (a
// load balancer's probe, a browser's preconnect) does not hold up the proxy's Shutdown for
// the 10 s the head may take; it is closed.
func TestUpgradesShutdownClosesWaitingConnections(t *testing.T) {
	keys, err := token.New([]byte(testSecret))
	must(t, err)
	srv, err := proxy.New(proxy.Config{Tokens: keys, Static: []ring.Announcement{{Node: "fake", Addr: fakeEdge(t, nil)}}})
	must(t, err)
	must(t, srv.Start())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(srv.Upgrades(ln))
	c, err := net.Dial("tcp", ln.Addr().String())
	must(t, err)
	defer c.Close()
	io.WriteString(c, "GET") // a request begun, not a request line: the proxy waits for more
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, hs.Shutdown(ctx))
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a connection waiting for its head: %v", err)
	}
	// Closed: an EOF, or a reset when the proxy closed it before reading what it had sent.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the waiting connection after Shutdown: read %v, want it closed", err)
	}
}

// TestUpgradesHalfCloseAfterHandOver: a /ws upgrade on a connection net/http served first
// still carries half-closes both ways: the edge finishes sending first, and what the client
// sends after still reaches it.
func TestUpgradesHalfCloseAfterHandOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		for { // every connection: the proxy's spares come here too, and send nothing
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nedge done")
				c.(*net.TCPConn).CloseWrite()
				b, _ := io.ReadAll(br)
				got <- string(b)
			}()
		}
	}()
	paddr, keys := staticProxy(t, ln.Addr().String())
	tok, err := keys.Issue("T1", "U1", time.Hour)
	must(t, err)
	c, err := net.Dial("tcp", paddr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	healthz(t, c, br, paddr)
	io.WriteString(c, upgradeRequest(paddr, tok))
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	if b, err := io.ReadAll(br); string(b) != "edge done" || err != nil {
		t.Fatalf("from the edge until its half-close: %q, %v", b, err)
	}
	io.WriteString(c, "late")
	c.(*net.TCPConn).CloseWrite()
	select {
	case b := <-got:
		if b != "late" {
			t.Fatalf("the edge got %q after its half-close, want \"late\"", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the edge got nothing after its half-close")
	}
}

// TestUpgradeWithABodyRefused: an upgrade that claims a body is refused 400 invalid_request,
// on a first request (whose body never comes) and after another (net/http reads the body
// before it answers, so this one sends it), and never makes the edge look unreachable (the
// handshake with the edge used to wait for the body the client never sent).
func TestUpgradeWithABodyRefused(t *testing.T) {
	keys, err := token.New([]byte(testSecret))
	must(t, err)
	p := wstack.StartProxy(t, proxy.Config{Tokens: keys, Static: []ring.Announcement{{Node: "fake", Addr: fakeEdge(t, nil)}}})
	paddr := strings.TrimPrefix(p.URL, "http://")
	tok, err := keys.Issue("T1", "U1", time.Hour)
	must(t, err)
	for _, afterHealthz := range []bool{false, true} {
		body := "Content-Length: 100\r\n\r\nab"
		if afterHealthz {
			body = "Content-Length: 2\r\n\r\nab"
		}
		withBody := strings.Replace(upgradeRequest(paddr, tok), "\r\n\r\n", "\r\n"+body, 1)
		c, err := net.Dial("tcp", paddr)
		must(t, err)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		if afterHealthz {
			healthz(t, c, br, paddr)
		}
		io.WriteString(c, withBody)
		resp, err := http.ReadResponse(br, nil)
		must(t, err)
		answer, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(answer), `"code":"invalid_request"`) {
			t.Errorf("an upgrade with a body (after /healthz: %v): %d %s", afterHealthz, resp.StatusCode, answer)
		}
		c.Close()
	}
	if down := p.Server.Membership().View().Down; len(down) > 0 {
		t.Fatalf("an upgrade with a body marked the edge down: %v", down)
	}
}
