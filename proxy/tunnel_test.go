package proxy_test

// The proxy's tunnel: half-closes pass through, and the client's Host reaches the edge. Each test's comment
// describes the bug it was written for; the test fails if that bug comes back.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
	"github.com/weft-edge/weft/proxy"
)

// fakeEdge upgrades any request, then reads the client until EOF and answers what it read,
// then closes: a peer that relies on TCP half-close (FIN in one direction, the other still
// open), which a byte tunnel must carry.
func fakeEdge(t *testing.T, gotHost chan<- *http.Request) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if gotHost != nil {
					gotHost <- req
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				b, _ := io.ReadAll(br)
				io.WriteString(c, "BYE:"+string(b))
			}()
		}
	}()
	return ln.Addr().String()
}

func staticProxy(t *testing.T, edgeAddr string) (string, *token.Keys) {
	keys, err := token.New([]byte(testSecret))
	must(t, err)
	p := wstack.StartProxy(t, proxy.Config{Tokens: keys, Static: []ring.Announcement{{Node: "fake", Addr: edgeAddr}}})
	return strings.TrimPrefix(p.URL, "http://"), keys
}

// TestTunnelHalfClose: the client sends its last bytes and half-closes (CloseWrite); the
// edge answers after reading EOF. pipe() treats EOF on either side as the end of both and
// closes the two sockets, so the edge's answer (in WebSocket terms: its close frame, a last
// reply) never reaches the client.
func TestTunnelHalfClose(t *testing.T) {
	edgeAddr := fakeEdge(t, nil)
	paddr, keys := staticProxy(t, edgeAddr)
	tok, err := keys.Issue("T1", "U1", time.Hour)
	must(t, err)
	c, err := net.Dial("tcp", paddr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", paddr, tok)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	io.WriteString(c, "last words")
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(br)
	if string(rest) != "BYE:last words" {
		t.Fatalf("after a half-close the client got %q (err %v), want the edge's answer %q", rest, err, "BYE:last words")
	}
}

// TestTunnelForwardsHeaders: the request the edge gets keeps the client's path, query and
// end-to-end headers (each value), names the client's Host in X-Forwarded-Host, and drops the
// client's hop-by-hop headers (Proxy-Authorization, those its Connection names) and its own
// claims of X-Forwarded-*, of which edges are down and of its region, for the proxy's.
func TestTunnelForwardsHeaders(t *testing.T) {
	got := make(chan *http.Request, 1)
	edgeAddr := fakeEdge(t, got)
	paddr, keys := staticProxy(t, edgeAddr)
	tok, _ := keys.Issue("T1", "U1", time.Hour)
	c, err := net.Dial("tcp", paddr)
	must(t, err)
	defer c.Close()
	fmt.Fprintf(c, "GET /ws?v=1&x=a%%20b HTTP/1.1\r\nHost: chat.example.com\r\nAuthorization: Bearer %s\r\n"+
		"Connection: Upgrade, x-private\r\nX-Private: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: websocket\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"X-Custom: a\r\nX-Custom: b\r\nUser-Agent: test/1\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"+
		protocol.HeaderExcluded+": edge-9\r\n"+protocol.HeaderRegion+": mars\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", tok)
	var req *http.Request
	select {
	case req = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the edge got no request")
	}
	var probs []string
	check := func(what, got, want string) {
		if got != want {
			probs = append(probs, fmt.Sprintf("%s %q, want %q", what, got, want))
		}
	}
	check("path", req.URL.Path, "/ws")
	check("query", req.URL.RawQuery, "v=1&x=a%20b")
	check("Authorization", req.Header.Get("Authorization"), "Bearer "+tok)
	check("X-Custom", strings.Join(req.Header.Values("X-Custom"), ","), "a,b")
	check("User-Agent", req.UserAgent(), "test/1")
	check("Sec-WebSocket-Key", req.Header.Get("Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==")
	check("X-Forwarded-For", strings.Join(req.Header.Values("X-Forwarded-For"), ","), "127.0.0.1")
	check("X-Forwarded-Proto", strings.Join(req.Header.Values("X-Forwarded-Proto"), ","), "http")
	check("X-Forwarded-Host", req.Header.Get("X-Forwarded-Host"), "chat.example.com")
	check(protocol.HeaderExcluded, req.Header.Get(protocol.HeaderExcluded), "")
	check(protocol.HeaderRegion, strings.Join(req.Header.Values(protocol.HeaderRegion), ","), "default") // the proxy's region
	check("Connection", req.Header.Get("Connection"), "Upgrade")
	check("Upgrade", req.Header.Get("Upgrade"), "websocket")
	for _, h := range []string{"X-Private", "Keep-Alive", "Te", "Proxy-Authorization"} {
		check(h, req.Header.Get(h), "")
	}
	if len(probs) > 0 {
		t.Fatal(strings.Join(probs, "; "))
	}
}

// TestTunnelLongSwitchingHead: an edge's 101 whose head does not fit the proxy's 4 KiB
// reader is read by the parser instead and still reaches the client, with the bytes after it.
func TestTunnelLongSwitchingHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	long := strings.Repeat("x", 6000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Long: "+long+"\r\n\r\nhello")
			}()
		}
	}()
	paddr, keys := staticProxy(t, ln.Addr().String())
	tok, _ := keys.Issue("T1", "U1", time.Hour)
	c, err := net.Dial("tcp", paddr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", tok)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	if resp.StatusCode != 101 || resp.Header.Get("X-Long") != long {
		t.Fatalf("status %d, X-Long of %d bytes", resp.StatusCode, len(resp.Header.Get("X-Long")))
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "hello" {
		t.Fatalf("after the head the client got %q, want %q", rest, "hello")
	}
}

// TestTunnelSaysHTTPSBehindTLS: a proxy whose clients reach it over TLS (ServesTLS, set by
// its --tls-cert) tells the edge X-Forwarded-Proto https, whatever the client claimed, on both
// of its paths: a WebSocket upgrade and /api.
func TestTunnelSaysHTTPSBehindTLS(t *testing.T) {
	keys, err := token.New([]byte(testSecret))
	must(t, err)
	tok, _ := keys.Issue("T1", "U1", time.Hour)
	behindTLS := func(edgeAddr string) string {
		p := wstack.StartProxy(t, proxy.Config{Tokens: keys, ServesTLS: true, Static: []ring.Announcement{{Node: "fake", Addr: edgeAddr}}})
		return p.URL
	}

	got := make(chan *http.Request, 1)
	wsProxy := behindTLS(fakeEdge(t, got))
	c, err := net.Dial("tcp", strings.TrimPrefix(wsProxy, "http://"))
	must(t, err)
	defer c.Close()
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: chat.example.com\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"X-Forwarded-Proto: http\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", tok)
	select {
	case r := <-got:
		testkit.Equal(t, strings.Join(r.Header.Values("X-Forwarded-Proto"), ","), "https", "X-Forwarded-Proto of an upgrade")
	case <-time.After(10 * time.Second):
		t.Fatal("the edge got no upgrade")
	}

	var proto atomic.Value
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(strings.Join(r.Header.Values("X-Forwarded-Proto"), ","))
		w.Write([]byte(`{"ok":true}`))
	}))
	defer edge.Close()
	req, _ := http.NewRequest(http.MethodPost, behindTLS(strings.TrimPrefix(edge.URL, "http://"))+"/api/users.info", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Forwarded-Proto", "http")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	testkit.Equal(t, resp.StatusCode, http.StatusOK, "/api through the proxy")
	testkit.Equal(t, proto.Load(), any("https"), "X-Forwarded-Proto of /api")
}
