package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/internal/ring/probe"
	"github.com/weft-edge/weft/internal/routesig"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// TestTokenRulesThroughProxy: what the edges enforce of a token holds through a proxy in front
// of 3 edges: the token in a query string is refused on /api (at the proxy) and taken on /ws; a
// deactivated user is refused with 403 account_inactive on both; and a paging cursor handed out
// continues its pages through the proxy, while one handed to another user does not.
func TestTokenRulesThroughProxy(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	for _, n := range []string{"edge-1", "edge-2", "edge-3"} {
		w.addEdge(n)
	}
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2", "edge-3")
	team := w.origin.TeamIDs()[0]
	var users []string
	for _, u := range w.origin.Users(team) {
		if !u.Deleted {
			users = append(users, u.ID)
		}
	}
	post := func(path, auth string, body any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, p.url+path, bytes.NewReader(b))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tok := w.token(team, users[1])
	if status, b := post("/api/users.info?token="+url.QueryEscape(tok), "", map[string]any{"users": []string{users[1]}}); status != http.StatusUnauthorized {
		t.Errorf("/api with the token in the query: %d %s, want 401", status, b)
	}
	c, _, err := websocket.Dial(ctx, "ws"+p.url[len("http"):]+"/ws?token="+url.QueryEscape(tok), &websocket.DialOptions{Subprotocols: []string{"weft.v1"}})
	if err != nil {
		t.Fatalf("/ws with the token in the query: %v", err)
	}
	c.CloseNow()

	status, page := post("/api/users.list", tok, map[string]any{"limit": 2})
	var list struct {
		NextCursor string `json:"next_cursor"`
	}
	if json.Unmarshal(page, &list); status != http.StatusOK || list.NextCursor == "" {
		t.Fatalf("users.list: %d %s", status, page)
	}
	if status, b := post("/api/users.list", tok, map[string]any{"limit": 2, "cursor": list.NextCursor}); status != http.StatusOK {
		t.Errorf("the next page through the proxy: %d %s", status, b)
	}
	if status, b := post("/api/users.list", w.token(team, users[2]), map[string]any{"limit": 2, "cursor": list.NextCursor}); status != http.StatusBadRequest {
		t.Errorf("another user's cursor: %d %s, want 400", status, b)
	}

	gone := users[3]
	if _, err := w.origin.UpdateUser(ctx, team, gone, func(u *origin.User) { u.Deleted = true }); err != nil {
		t.Fatal(err)
	}
	goneTok := w.token(team, gone)
	var e struct {
		Error protocol.Error `json:"error"`
	}
	// The team is loaded on its edge: the deactivation arrives there as an event, soon.
	var b []byte
	testkit.Eventually(t, func() bool {
		status, b = post("/api/users.info", goneTok, map[string]any{"users": []string{gone}})
		return status != http.StatusOK
	}, "the deactivation to reach the edge")
	if json.Unmarshal(b, &e); status != http.StatusForbidden || e.Error.Code != protocol.CodeAccountInactive {
		t.Errorf("a deactivated user's /api through the proxy: %d %s", status, b)
	}
	_, resp, err := websocket.Dial(ctx, "ws"+p.url[len("http"):]+"/ws", &websocket.DialOptions{Subprotocols: []string{"weft.v1"},
		HTTPHeader: http.Header{"Authorization": {"Bearer " + goneTok}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a deactivated user's /ws through the proxy: %v, %v", err, resp)
	}
}

// TestProbeNeedsProof: an edge answers /probe (its node, region and load) only to a proxy or a
// peer, which sign it as routing headers are signed; anyone else gets a 404.
func TestProbeNeedsProof(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	e := w.addEdge("edge-1")
	w.addProxy()
	w.waitRing("edge-1")
	get := func(proof string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.addr+probe.Path, nil)
		if proof != "" {
			req.Header.Set(probe.Header, proof)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(""); st != http.StatusNotFound {
		t.Errorf("an unsigned probe: %d, want 404", st)
	}
	signer, err := routesig.New(w.keys.RoutingKey())
	must(t, err)
	if st := get(signer.Sign(time.Now(), routesig.Route{Path: probe.Path})); st != http.StatusOK {
		t.Errorf("a signed probe: %d, want 200", st)
	}
	if st := get(signer.Sign(time.Now(), routesig.Route{Path: "/ws"})); st != http.StatusNotFound {
		t.Errorf("a probe with a signature for another path: %d, want 404", st)
	}
}
