package proxy_test

// A proxy says ready only once it has heard the whole ring. Each test's comment
// describes the bug it was written for; the test fails if that bug comes back.

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestReadyOnlyWithWholeRing: a proxy that just started says ready as soon as it has
// heard one edge, and routes by the ring of the edges it has heard so far: every team goes to
// that edge, which (seeing the whole ring) answers most of them goodbye moved.
func TestReadyOnlyWithWholeRing(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	for i := 1; i <= 3; i++ {
		w.addEdge(fmt.Sprintf("edge-%d", i))
	}
	w.addProxy()
	w.waitRing("edge-1", "edge-2", "edge-3")
	p := w.addProxy() // a restarted proxy behind a load balancer
	testkit.Eventually(t, func() bool {
		resp, err := http.Get(p.url + "/readyz")
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "the new proxy to say ready")
	nodes := p.srv.Membership().View().Ring.Nodes()
	e1 := w.edges["edge-1"].srv.Membership()
	disagree := 0
	for _, team := range w.origin.TeamIDs() {
		if p.srv.Membership().Owner(team) != e1.Owner(team) {
			disagree++
		}
	}
	if len(nodes) != 3 {
		t.Fatalf("the new proxy said ready with ring %v; it disagrees with the edges on %d of %d teams",
			nodes, disagree, len(w.origin.TeamIDs()))
	}
}
