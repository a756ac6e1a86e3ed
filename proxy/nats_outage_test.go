package proxy_test

// A proxy keeps routing through a NATS outage (issue 18): the edges fall silent on NATS, not
// dead, and the proxy keeps them in its ring while they answer its probes.

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
)

// ping calls /api/ping for team through the proxy at base and returns the status and body.
func (w *world) ping(base, team string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest("POST", base+"/api/ping", bytes.NewReader([]byte(`{}`)))
	must(w.t, err)
	req.Header.Set("Authorization", "Bearer "+w.token(team, w.origin.Users(team)[0].ID))
	resp, err := http.DefaultClient.Do(req)
	must(w.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestRingKeptThroughNATSOutage: two edges and a proxy on a NATS that goes away. Past the
// edges' TTL, the proxy still routes on the same ring (same version), kept by its probes, and
// every call for a warm team through it succeeds; it says so on /readyz and /metrics. An edge
// that dies during the outage (its probes fail) leaves the ring as it would have without
// NATS down. When NATS is back and the announcements take over, the ring does not change.
func TestRingKeptThroughNATSOutage(t *testing.T) {
	nats := backend.RestartableNATS(t)
	// Every warm team is called at every poll, faster than a user's /api quota allows: the
	// quota is not what this test is about.
	w := newWorldOn(t, nats.Embedded(), "small", func(c *edge.Config) { c.RequestRate = -1 })
	e1 := w.addEdge("edge-1")
	e2 := w.addEdge("edge-2")
	p := w.addProxy()
	w.waitRing("edge-1", "edge-2")
	members := p.srv.Membership()
	testkit.Eventually(t, func() bool {
		status, _ := get(t, p.url+"/readyz")
		return status == 200
	}, "the proxy to say ready")

	// Warm four teams on each edge.
	byEdge := map[string][]string{}
	for _, team := range w.origin.TeamIDs() {
		if o := members.Owner(team); len(byEdge[o]) < 4 {
			byEdge[o] = append(byEdge[o], team)
		}
	}
	if len(byEdge["edge-1"]) < 4 || len(byEdge["edge-2"]) < 4 {
		t.Fatalf("teams by edge %v: the small world should give each edge four", byEdge)
	}
	calls := 0
	callAll := func(teams []string, when string) {
		t.Helper()
		for _, team := range teams {
			calls++
			if status, body := w.ping(p.url, team); status != 200 {
				t.Fatalf("%s: /api/ping for warm team %s (on %s): %d %s", when, team, members.Owner(team), status, body)
			}
		}
	}
	warm := append(slices.Clone(byEdge["edge-1"]), byEdge["edge-2"]...)
	callAll(warm, "before the outage")
	v0 := members.View().Version
	// The edges route by rings of their own (ownership checks, moves): those must hold too,
	// or NATS returning would move sessions for nothing.
	e1members := e1.srv.Membership()
	e0 := e1members.View().Version

	nats.Stop()
	// Past every edge's TTL (2s: 5 × 100ms, at least MinTTL), both edges are kept by probes;
	// every warm team is called at every poll meanwhile.
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		callAll(warm, "NATS down")
		return slices.Equal(members.View().Probed, []string{"edge-1", "edge-2"}) &&
			slices.Equal(e1members.View().Probed, []string{"edge-2"})
	}, "the proxy to keep both silent edges past their TTL by probes, and edge-1 its peer")
	if ev := e1members.View(); ev.Version != e0 || ev.Ring.Key() != "edge-1,edge-2" {
		t.Fatalf("edge-1's ring with NATS down: %q version %d, want edge-1,edge-2 version %d", ev.Ring.Key(), ev.Version, e0)
	}
	v := members.View()
	if v.Version != v0 || v.Ring.Key() != "edge-1,edge-2" {
		t.Fatalf("NATS down past the TTL: ring %q version %d, want edge-1,edge-2 version %d", v.Ring.Key(), v.Version, v0)
	}
	callAll(warm, "NATS down past the TTL")
	if status, body := get(t, p.ops+"/readyz"); status != 200 || !strings.Contains(body, "kept by probes") {
		t.Errorf("/readyz while routing on probes: %d %q", status, body)
	}
	_, metrics := get(t, p.ops+"/metrics")
	if !strings.Contains(metrics, "\nweft_proxy_edges_probed 2\n") || strings.Contains(metrics, `weft_proxy_probes_total{outcome="answered"} 0`) {
		t.Errorf("metrics while routing on probes:\n%s", grepLines(metrics, "weft_proxy_edges_probed", "weft_proxy_probes_total"))
	}

	// edge-2 dies: it answers no probe, and leaves.
	w.stopEdge(e2, true)
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		_, known := members.View().Edges["edge-2"]
		return !known
	}, "the dead edge to leave")
	v = members.View()
	if v.Ring.Key() != "edge-1" || v.Version != v0+1 {
		t.Fatalf("after edge-2 died: ring %q version %d, want edge-1 version %d", v.Ring.Key(), v.Version, v0+1)
	}
	callAll(byEdge["edge-1"], "NATS down, edge-2 gone")

	nats.Start()
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		return len(members.View().Probed) == 0
	}, "the proxy to hear edge-1 announce again")
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		_, known := e1members.View().Edges["edge-2"]
		return !known
	}, "edge-1 to see edge-2 gone")
	if ev := e1members.View(); ev.Version != e0+1 || ev.Ring.Key() != "edge-1" {
		t.Fatalf("edge-1's ring with NATS back: %q version %d, want edge-1 version %d", ev.Ring.Key(), ev.Version, e0+1)
	}
	v = members.View()
	if v.Ring.Key() != "edge-1" || v.Version != v0+1 {
		t.Fatalf("NATS back: ring %q version %d, want edge-1 version %d unchanged", v.Ring.Key(), v.Version, v0+1)
	}
	callAll(byEdge["edge-1"], "NATS back")
	if status, body := get(t, p.ops+"/readyz"); status != 200 || body != "ready\n" {
		t.Errorf("/readyz with NATS back: %d %q", status, body)
	}
	t.Logf("%d calls for warm teams through the proxy, all answered 200", calls)
}

// grepLines is the lines of text that contain any of words.
func grepLines(text string, words ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
