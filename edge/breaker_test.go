package edge

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/protocol"
)

// TestOriginOutage: the origin fails. Warm teams keep being served over the WebSocket and
// /api; loads of cold teams answer origin_unavailable with retry_after_ms; once the breaker
// opened they do so without calling the origin; when the origin is back the breaker probes,
// closes, and cold teams load again.
func TestOriginOutage(t *testing.T) {
	br := origin.NewBreaker(origin.BreakerConfig{Failures: 3, OpenFor: 300 * time.Millisecond, K: -1})
	h := newHarness(t, harnessOpts{guard: br, edge: func(c *Config) { c.Breaker = br }})
	team := h.team
	var cold []string
	for _, id := range h.origin.TeamIDs() {
		if id != team {
			cold = append(cold, id)
		}
	}
	live := h.dial(team, h.user(team, 1), "")
	h.origin.SetFaults(reference.Faults{ErrorRate: 1})

	unavailable := func(what, id string) {
		t.Helper()
		st, body := h.api(h.token(id, h.user(id, 1)), "ping", nil)
		var e protocol.Error
		json.Unmarshal(body["error"], &e)
		if st != http.StatusServiceUnavailable || e.Code != protocol.CodeOriginUnavailable || e.RetryAfterMS <= 0 {
			t.Fatalf("%s: loading cold team %s: %d %s", what, id, st, body["error"])
		}
	}
	served := func(what string) {
		t.Helper()
		if f := live.request("users.info", map[string]any{"users": []string{h.user(team, 2)}}); !f.OK {
			t.Fatalf("%s: a warm team's query failed: %s", what, f.raw)
		}
		if st, body := h.api(h.token(team, h.user(team, 3)), "users.info", map[string]any{"users": []string{h.user(team, 4)}}); st != 200 {
			t.Fatalf("%s: /api on a warm team: %d %s", what, st, body["error"])
		}
	}
	for i := 0; br.State() != "open"; i++ {
		if i > 20 {
			t.Fatal("the breaker never opened")
		}
		unavailable("origin failing", cold[i%len(cold)])
		served("origin failing")
	}
	before := h.orig.Requests()
	for i := range 10 {
		unavailable("circuit open", cold[i%len(cold)])
	}
	served("circuit open")
	if n := h.orig.Requests() - before; n != 0 {
		t.Fatalf("%d origin requests while the circuit was open", n)
	}
	if v := h.metric("weft_edge_origin_circuit"); v != 2 {
		t.Fatalf("circuit metric %v while open", v)
	}
	if _, body := h.opsGet("/readyz"); body == "ready\n" {
		t.Fatal("/readyz does not mention the open circuit")
	}

	h.origin.SetFaults(reference.Faults{})
	testkit.Eventually(t, func() bool {
		st, _ := h.api(h.token(cold[0], h.user(cold[0], 1)), "ping", nil)
		return st == 200
	}, "a cold team to load once the origin is back")
	if br.State() != "closed" {
		t.Fatalf("breaker %s after the origin came back", br.State())
	}
	served("origin back")
}
