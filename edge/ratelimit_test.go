package edge

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/weft-edge/weft/protocol"
)

// TestSessionOverQuotaIsToldAndPaused: a session that sends past its request bucket gets
// rate_limited with retry_after_ms, and its reads pause (counted) until the bucket refills, after
// which its next frame is answered; another session of the same team meanwhile is served without a
// refusal. (The pause is checked by its count, not by a clock: tests assert no elapsed time.)
func TestSessionOverQuotaIsToldAndPaused(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.RequestRate, c.RequestBurst = 5, 3 }})
	team := h.team
	greedy := h.dial(team, h.user(team, 1), "")
	polite := h.dial(team, h.user(team, 2), "")

	// Three in the burst, then a refusal: all sent at once.
	for id := 1; id <= 4; id++ {
		greedy.send(fmt.Appendf(nil, `{"id":%d,"method":"ping"}`, id))
	}
	for id := int64(1); id <= 3; id++ {
		if f := greedy.reply(id); !f.OK {
			t.Fatalf("request %d within the burst refused: %s", id, f.raw)
		}
	}
	limited := greedy.reply(4)
	if limited.OK || limited.Error == nil || limited.Error.Code != protocol.CodeRateLimited || limited.Error.RetryAfterMS <= 0 {
		t.Fatalf("4th request past a burst of 3: %s", limited.raw)
	}
	// The next frame waits until the bucket has a token again (one per 200ms).
	greedy.send([]byte(`{"id":5,"method":"ping"}`))
	// Meanwhile the other session is untouched.
	for range 3 {
		if f := polite.request("ping", nil); !f.OK {
			t.Fatalf("a session under its quota was refused while another was over: %s", f.raw)
		}
	}
	next := greedy.reply(5)
	if !next.OK {
		t.Fatalf("request after the pause: %s", next.raw)
	}
	if n := h.metric(`weft_edge_session_pauses_total{reason="requests"}`); n < 1 {
		t.Fatalf("pauses metric %v", n)
	}
	if n := h.metric(`weft_edge_requests_total{method="ping",outcome="rate_limited"}`); n != 1 {
		t.Fatalf("rate_limited requests metric %v, want 1", n)
	}
}

// TestConnectRateLimits: past its team's connection bucket a handshake gets 429 rate_limited
// with a Retry-After, while another team connects; past the node's bucket every team does.
func TestConnectRateLimits(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) {
		c.TeamConnectRate, c.TeamConnectBurst = 0.01, 2 // a token per 100s: none comes back in the test
		c.ConnectRate, c.ConnectBurst = 0.01, 4
	}})
	team, other := h.team, h.other
	h.dial(team, h.user(team, 1), "")
	h.dial(team, h.user(team, 2), "")
	refused := func(tm, why string) {
		t.Helper()
		_, resp, err := h.dialRaw(h.token(tm, h.user(tm, 3)), "")
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: handshake not refused with 429 and Retry-After (err %v)", why, err)
		}
	}
	refused(team, "third connection of a team with a burst of 2")
	h.dial(other, h.user(other, 1), "") // the node's 4th token: another team is not held back
	refused(other, "past the node's burst of 4")
	if n := h.metric(`weft_edge_shed_total{what="team_connects"}`); n != 1 {
		t.Fatalf("team_connects refusals %v", n)
	}
	if n := h.metric(`weft_edge_shed_total{what="node_connects"}`); n != 1 {
		t.Fatalf("node_connects refusals %v", n)
	}
}
