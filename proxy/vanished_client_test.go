package proxy_test

// A client that goes away while the proxy routes its /ws does not mark edges down. Each test's comment
// describes the bug it was written for; the test fails if that bug comes back.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestVanishedClientKeepsEdgesUp: a client that goes away while the proxy is routing its
// /ws (the http.Server cancels r.Context()) makes forwardWS's DialContext fail at once; route
// takes that for "unreachable", marks the owner down, tries the next owner (same failure),
// and so on: one vanished client empties the proxy's ring for DownFor, and every other
// client gets 503 no_edge meanwhile.
func TestVanishedClientKeepsEdgesUp(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	w.addEdge("edge-1")
	w.addEdge("edge-2")
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2")
	team := w.origin.TeamIDs()[0]
	tok := w.token(team, w.origin.Users(team)[0].ID)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // what net/http does when the client's connection closes mid-request
	req := httptest.NewRequest("GET", "/ws", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Protocol", "weft.v1")
	rec := httptest.NewRecorder()
	p.srv.ServeHTTP(rec, req)

	v := p.srv.Membership().View()
	if len(v.Down) != 0 || len(v.Ring.Nodes()) != 2 {
		t.Fatalf("a client that went away marked edges down: ring %v, down %v (status to the gone client %d)",
			v.Ring.Nodes(), v.Down, rec.Code)
	}
}

// TestVanishedClientKeepsEdgesUpOverTCP: the same through a real socket: send the upgrade
// request and close at once, a few times; the proxy's ring must keep both edges.
func TestVanishedClientKeepsEdgesUpOverTCP(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	w.addEdge("edge-1")
	w.addEdge("edge-2")
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2")
	team := w.origin.TeamIDs()[0]
	tok := w.token(team, w.origin.Users(team)[0].ID)
	u, _ := url.Parse(p.url)
	head := fmt.Sprintf("GET /ws HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: weft.v1\r\n\r\n", u.Host, tok)
	pace := time.NewTicker(2 * time.Millisecond) // 500 vanishing clients a second
	defer pace.Stop()
	for i := range 200 {
		c, err := net.Dial("tcp", u.Host)
		must(t, err)
		c.Write([]byte(head))
		c.Close()
		<-pace.C
		if v := p.srv.Membership().View(); len(v.Down) > 0 {
			t.Fatalf("after %d vanished clients the proxy's ring is %v, down %v", i+1, v.Ring.Nodes(), v.Down)
		}
	}
	_ = http.StatusOK
}
