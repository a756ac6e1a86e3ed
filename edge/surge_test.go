package edge

import (
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestSurgeWindow: a surge is SurgeLoads load starts within the window; it ends when they age
// out of it; a negative threshold never surges.
func TestSurgeWindow(t *testing.T) {
	s := &surge{loads: 3, window: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	s.loadStarted(t0)
	s.loadStarted(t0.Add(time.Second))
	if s.active(t0.Add(2 * time.Second)) {
		t.Fatal("2 loads made a surge of 3")
	}
	s.loadStarted(t0.Add(3 * time.Second))
	if !s.active(t0.Add(3 * time.Second)) {
		t.Fatal("3 loads within 10s are not a surge")
	}
	if s.active(t0.Add(10*time.Second + time.Millisecond)) { // the first aged out
		t.Fatal("still a surge after the first load left the window")
	}
	for range 100 {
		s.loadStarted(t0.Add(20 * time.Second))
	}
	if len(s.starts) > 4*s.loads {
		t.Fatalf("kept %d starts: the record must stay bounded", len(s.starts))
	}
	off := &surge{loads: -1, window: time.Second}
	for range 10 {
		off.loadStarted(t0)
	}
	if off.active(t0) {
		t.Fatal("SurgeLoads < 0 surged")
	}
}

// TestSurgeDefersTypoFallback: on a node where two team loads make a surge, the loads' typo
// fallback builds are deferred (shed with what=fuzzy_index_surge) and searches still answer
// from the prefix path.
func TestSurgeDefersTypoFallback(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.SurgeLoads = 2 }})
	h.dial(h.team, h.user(h.team, 1), "")
	h.dial(h.other, h.user(h.other, 1), "")
	testkit.EventuallyWithin(t, time.Minute, func() bool {
		return h.metric(`weft_edge_shed_total{what="fuzzy_index_surge"}`) >= 1
	}, "a typo-fallback build deferred after two loads made a surge")
	name := h.origin.Users(h.other)[2].Name
	var res struct {
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}
	h.apiCall(h.token(h.other, h.user(h.other, 1)), "autocomplete", map[string]any{"query": name[:3]}, &res)
	if len(res.Results) == 0 {
		t.Fatalf("autocomplete %q answered nothing during the surge", name[:3])
	}
}
