package proxy_test

// /api through the proxy: a draining edge's refusal fails over to the next owner. Each test's comment
// describes the bug it was written for; the test fails if that bug comes back.

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/ring"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/proxy"
)

// TestAPIFailsOverFromDrainingEdge: a draining edge answers /ws with 503 + Weft-Refused (the proxy
// tries the next owner) but /api with a plain 503, which the proxy hands to the client. With
// static edges (the proxy never hears "draining") every API call of the edge's teams fails for
// the whole drain; with discovery, for the time the announcement takes.
func TestAPIFailsOverFromDrainingEdge(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	e1, e2 := w.addEdge("edge-1"), w.addEdge("edge-2")
	w.waitRing("edge-1", "edge-2")
	sp := wstack.StartProxy(t, proxy.Config{Tokens: w.keys, Static: []ring.Announcement{
		{Node: "edge-1", Addr: e1.addr}, {Node: "edge-2", Addr: e2.addr}}})
	p := sp.Server
	var team string
	for _, id := range w.origin.TeamIDs() {
		if p.Membership().Owner(id) == "edge-1" {
			team = id
		}
	}
	if team == "" {
		t.Fatal("no team of the tiny world is on edge-1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e1.srv.Shutdown(ctx) // draining; its listener still answers
	req, _ := http.NewRequest("POST", sp.URL+"/api/ping", bytes.NewReader([]byte(`{}`)))
	req.Header.Set("Authorization", "Bearer "+w.token(team, w.origin.Users(team)[0].ID))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/api through the proxy while the owner drains: %d %s (edge-2 serves and /ws would fail over)", resp.StatusCode, body)
	}
}
