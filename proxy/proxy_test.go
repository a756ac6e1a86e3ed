package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/routesig"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/proxy"
)

// TestProxiesAgreeOnEveryOwner: two proxies and three edges that heard the same announcements
// compute the same owner for every team, and a client through either proxy lands on it.
func TestProxiesAgreeOnEveryOwner(t *testing.T) {
	w := newWorld(t, "small", nil)
	for i := 1; i <= 3; i++ {
		w.addEdge(fmt.Sprintf("edge-%d", i))
	}
	p1, p2 := w.addProxy(), w.addProxy()
	w.waitRing("edge-1", "edge-2", "edge-3")
	m1, m2 := p1.srv.Membership(), p2.srv.Membership()
	teams := w.origin.TeamIDs()
	for i := range 2000 {
		teams = append(teams, fmt.Sprintf("T%08d", i))
	}
	owners := map[string]int{}
	for _, team := range teams {
		o := m1.Owner(team)
		if o == "" || o != m2.Owner(team) {
			t.Fatalf("team %s: proxy 1 says %q, proxy 2 says %q", team, o, m2.Owner(team))
		}
		for name, e := range w.edges {
			if eo := e.srv.Membership().Owner(team); eo != o {
				t.Fatalf("team %s: proxies say %s, %s says %s", team, o, name, eo)
			}
		}
		owners[o]++
	}
	if len(owners) != 3 {
		t.Fatalf("owners %v: want all three edges used", owners)
	}
	for i, team := range w.origin.TeamIDs()[:12] {
		p := []*proxyNode{p1, p2}[i%2]
		c := w.dial(p.url, team, w.origin.Users(team)[0].ID, nil)
		if got, want := c.Hello().Node, m1.Owner(team); got != want {
			t.Errorf("team %s through proxy %d: served by %s, owner %s", team, i%2+1, got, want)
		}
		c.Close()
	}
}

// TestBadTokenRefusedAtProxy: a bad token gets 401 invalid_auth from the proxy itself, on /ws
// and on /api, and no edge ever sees the request.
func TestBadTokenRefusedAtProxy(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	e := w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	team := w.origin.TeamIDs()[0]
	user := w.origin.Users(team)[0].ID
	other, err := token.New([]byte("some-other-secret-0123456789"))
	must(t, err)
	forged, err := other.Issue(team, user, 3600e9)
	must(t, err)
	before := e.node.Requests()
	for _, tc := range []struct{ name, method, path, auth string }{
		{"ws forged", "GET", "/ws", "Bearer " + forged},
		{"ws garbage", "GET", "/ws", "Bearer not.a.jwt"},
		{"ws none", "GET", "/ws", ""},
		{"api forged", "POST", "/api/users.info", "Bearer " + forged},
		{"api none", "POST", "/api/ping", ""},
	} {
		req, _ := http.NewRequest(tc.method, p.url+tc.path, bytes.NewReader([]byte(`{"users":["`+user+`"]}`)))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		if tc.method == "GET" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			req.Header.Set("Sec-WebSocket-Protocol", "weft.v1")
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got struct {
			OK    bool `json:"ok"`
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 401 || got.Error.Code != "invalid_auth" {
			t.Errorf("%s: status %d body %s", tc.name, resp.StatusCode, body)
		}
	}
	if n := e.node.Requests() - before; n != 0 {
		t.Errorf("%d requests with bad tokens reached the edge", n)
	}
	// A good token goes through, on /api too.
	req, _ := http.NewRequest("POST", p.url+"/api/users.info", bytes.NewReader([]byte(`{"users":["`+user+`"]}`)))
	req.Header.Set("Authorization", "Bearer "+w.token(team, user))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"ok":true`)) || e.node.Requests() == before {
		t.Fatalf("good token through the proxy: %d %s", resp.StatusCode, body)
	}
}

// TestEdgeSaysMovedForTeamsItDoesNotOwn: a connection straight to an edge the ring does not
// give the team to gets goodbye moved and close code 4009. A proxy's note that the owner is
// down (Weft-Excluded) makes the edge serve it, but only signed as a proxy signs it
// (Weft-Routed): a client's own note, or one lifted from another client's request, is ignored
// and counted. (Before, any client could name the owner down and be served by the wrong edge.)
func TestEdgeSaysMovedForTeamsItDoesNotOwn(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	e1, e2 := w.addEdge("edge-1"), w.addEdge("edge-2")
	w.addProxy()
	w.waitRing("edge-1", "edge-2")
	var team, owner string
	var other *edgeNode
	for _, id := range w.origin.TeamIDs() {
		if o := e1.srv.Membership().Owner(id); o == "edge-1" {
			team, owner, other = id, o, e2
			break
		} else if o == "edge-2" {
			team, owner, other = id, o, e1
		}
	}
	users := w.origin.Users(team)
	tok := w.token(team, users[0].ID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := func(hdr http.Header) []byte {
		t.Helper()
		c, _, err := websocket.Dial(ctx, "ws://"+other.addr+"/ws", &websocket.DialOptions{Subprotocols: []string{"weft.v1"}, HTTPHeader: hdr})
		must(t, err)
		defer c.CloseNow()
		_, b, err := c.Read(ctx)
		must(t, err)
		return b
	}
	moved := func(what string, hdr http.Header) {
		t.Helper()
		c, _, err := websocket.Dial(ctx, "ws://"+other.addr+"/ws", &websocket.DialOptions{Subprotocols: []string{"weft.v1"}, HTTPHeader: hdr})
		must(t, err)
		_, b, err := c.Read(ctx)
		must(t, err)
		var bye struct{ Type, Reason string }
		if json.Unmarshal(b, &bye) != nil || bye.Type != "goodbye" || bye.Reason != "moved" {
			t.Fatalf("%s: a non-owner's first frame: %s", what, b)
		}
		if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != 4009 {
			t.Fatalf("%s: close: %v, want status 4009", what, err)
		}
	}
	moved("no note", http.Header{"Authorization": {"Bearer " + tok}})
	moved("the client's own note", http.Header{"Authorization": {"Bearer " + tok}, "Weft-Excluded": {owner}})

	signer, err := routesig.New(w.keys.RoutingKey())
	must(t, err)
	sign := func(tok string) string {
		return signer.Sign(time.Now(), routesig.Route{Path: "/ws", Token: tok, Excluded: owner, Region: ring.DefaultRegion})
	}
	lifted := http.Header{"Authorization": {"Bearer " + tok}, "Weft-Excluded": {owner}, "Weft-Region": {ring.DefaultRegion},
		"Weft-Routed": {sign(w.token(team, users[1].ID))}}
	moved("a note signed for another client", lifted)

	signed := http.Header{"Authorization": {"Bearer " + tok}, "Weft-Excluded": {owner}, "Weft-Region": {ring.DefaultRegion},
		"Weft-Routed": {sign(tok)}}
	if b := first(signed); !bytes.Contains(b, []byte(`"type":"hello"`)) {
		t.Fatalf("with the owner excluded by a proxy's signed note, first frame: %s", b)
	}
	for why, want := range map[string]string{"unsigned": "1", "bad": "1"} {
		if got := metricOf(t, other.node.OpsURL, `weft_edge_routing_headers_ignored_total{why="`+why+`"}`); got != want {
			t.Errorf("routing headers ignored as %s: %s, want %s", why, got, want)
		}
	}
}

// metricOf is the value of the series named by name (with its labels) at base's /metrics (an
// operator listener), or "".
func metricOf(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// gauge is a heap reading the test sets, for an edge's admission control.
type gauge struct{ v atomic.Uint64 }

func (g *gauge) HeapBytes() uint64 { return g.v.Load() }

// TestProxyPacesConnections: the proxy sends an edge no more new connections than its pace
// allows, refusing the rest with 429 and a Retry-After; and none at all while the edge
// announces that it is not admitting (over its memory watermark), without bothering it. (The
// edge has no connection limit of its own, so it announces no accept rate: the pace is the
// proxy's EdgeRate.)
func TestProxyPacesConnections(t *testing.T) {
	g := &gauge{}
	w := newWorld(t, "tiny", func(c *edge.Config) {
		c.Admission = edge.AdmissionConfig{Budget: 1000, Gauge: g, SampleEvery: 20 * time.Millisecond}
		c.ConnectRate = -1
	})
	w.proxyFn = func(c *proxy.Config) { c.EdgeRate, c.EdgeBurst = 0.01, 3 }
	e := w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	team := w.origin.TeamIDs()[0]
	dial := func(u int) *http.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "ws"+p.url[len("http"):]+"/ws", &websocket.DialOptions{Subprotocols: []string{"weft.v1"},
			HTTPHeader: http.Header{"Authorization": {"Bearer " + w.token(team, w.origin.Users(team)[u].ID)}}})
		if err == nil {
			t.Cleanup(func() { c.CloseNow() })
		}
		return resp
	}
	for u := range 3 {
		if resp := dial(u); resp == nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d within the pace refused: %v", u, resp)
		}
	}
	if resp := dial(3); resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th connection past a burst of 3: %v", resp)
	}
	g.v.Store(900) // over high: the edge stops admitting and says so in its announcements
	testkit.Eventually(t, func() bool {
		a := p.srv.Membership().View().Edges["edge-1"]
		return !a.Admitting
	}, "the proxy to see the edge not admitting")
	hits := e.node.Requests()
	if resp := dial(4); resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("connection to an edge not admitting: %v", resp)
	}
	if e.node.Requests() != hits {
		t.Fatal("the proxy bothered an edge that is not admitting")
	}
}

// TestClientTurnedAwayMovedComesBackAtOnce: the Go client dialing an edge that does not own its
// team is turned away with goodbye moved before any hello; it reconnects at once, and, turned
// away again and again (it keeps dialing the same wrong edge), falls back to backing off rather
// than spinning.
func TestClientTurnedAwayMovedComesBackAtOnce(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	e1, e2 := w.addEdge("edge-1"), w.addEdge("edge-2")
	w.waitRing("edge-1", "edge-2")
	team, wrong := w.origin.TeamIDs()[0], e2 // whichever edge does not own the team
	if e1.srv.Membership().Owner(team) == "edge-2" {
		wrong = e1
	}
	var mu sync.Mutex
	var rs []client.Reconnect
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, client.Options{URL: "ws://" + wrong.addr + "/ws", Token: w.token(team, w.origin.Users(team)[0].ID),
		Backoff:     client.Backoff{Min: 200 * time.Millisecond, Max: time.Second},
		OnReconnect: func(r client.Reconnect) { mu.Lock(); rs = append(rs, r); mu.Unlock() }})
	if err == nil {
		t.Fatal("a client only ever dialing the wrong edge connected")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rs) < 3 {
		t.Fatalf("%d reconnects in 3s", len(rs))
	}
	for i, r := range rs {
		if r.Goodbye == nil || r.Goodbye.Reason != "moved" {
			t.Fatalf("reconnect %d: %+v, want after goodbye moved", i, r)
		}
	}
	if rs[0].Wait != 0 {
		t.Errorf("first reconnect after moved waited %v, want at once", rs[0].Wait)
	}
	if len(rs) > 40 {
		t.Errorf("%d reconnects in 3s: the client spins instead of backing off", len(rs))
	}
}

// TestEdgeAnnouncesItsLag: an edge measures its scheduling lag and announces it over NATS with
// the connections a second it takes (its ConnectRate, 1,000 by default, and as many at once);
// the proxy hears it and
// paces connections to that edge by them (weft_proxy_edge_pace, between its floor and the
// announced rate, not the proxy's EdgeRate of 150).
func TestEdgeAnnouncesItsLag(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	testkit.Eventually(t, func() bool {
		return p.srv.Membership().View().Edges["edge-1"].LagP99MS > 0
	}, "an announcement with the edge's lag")
	testkit.Equal(t, p.srv.Membership().View().Edges["edge-1"].AcceptRate, 1000.0, "the accept rate the edge announces")
	testkit.Equal(t, p.srv.Membership().View().Edges["edge-1"].AcceptBurst, 1000, "the burst the edge announces")
	// The membership takes an announcement before the pace does (observe): the gauge follows
	// a moment after the view.
	var pace float64
	seen := false
	testkit.Eventually(t, func() bool {
		resp, err := http.Get(p.ops + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for line := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(line, `weft_proxy_edge_pace{edge="edge-1"} `); ok {
				pace, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
				seen = true
			}
		}
		return seen
	}, "weft_proxy_edge_pace for edge-1")
	if pace < 150.0/3 || pace > 1000 {
		t.Fatalf("weft_proxy_edge_pace for edge-1 = %v, want within [50, 1000] (the default floor and the announced rate)", pace)
	}
}
