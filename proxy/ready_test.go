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

// TestLeaveServesWhileNotReady: a proxy told to leave (the first step of its stop behind a
// load balancer, --shutdown-delay) says not ready on both listeners but still serves the
// clients the balancer sends it until it notices: a connection made then is served.
func TestLeaveServesWhileNotReady(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	testkit.Eventually(t, func() bool { return status(t, p.url+"/readyz") == http.StatusOK }, "the proxy to say ready")
	p.srv.Leave()
	testkit.Equal(t, status(t, p.url+"/readyz"), http.StatusServiceUnavailable, "readiness on the client port after Leave")
	testkit.Equal(t, status(t, p.ops+"/readyz"), http.StatusServiceUnavailable, "readiness on the operator port after Leave")
	team := w.origin.TeamIDs()[0]
	c := w.dial(p.url, team, w.origin.Users(team)[0].ID, nil)
	testkit.Equal(t, c.Hello().Node, "edge-1", "the node that served a client after Leave")
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
