package proxy_test

// The WebSocket fast path (Upgrades) and the spare connections to edges (spares.go): what they
// must not change about what clients and edges see.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/ring"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/proxy"
)

// upgradeRequest is a WebSocket upgrade to /ws with tok.
func upgradeRequest(host, tok string) string {
	return fmt.Sprintf("GET /ws HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", host, tok)
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
	deadline := time.Now().Add(10 * time.Second)
	for e.idleCount() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the edge has %d idle connections from the proxy, want its 3 spares", e.idleCount())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
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
