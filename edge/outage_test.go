package edge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// Through a NATS outage the edge serves its warm teams from their stores, refuses to load new
// ones with overloaded and a retry_after_ms, keeps every session, and when NATS returns gives
// each session the events it missed once, in order, before anything newer.
func TestNATSOutage(t *testing.T) {
	h := newHarness(t, harnessOpts{outages: true})
	team := h.team
	a := h.dial(team, h.user(team, 1), "")
	b := h.dial(team, h.user(team, 2), "")
	first := h.markerEvent(team)
	waitAll(t, []*wsClient{a, b}, first.Seq)
	testkit.Eventually(t, func() bool {
		return h.metric("weft_feed_teams_without_feed") == 0 && h.metric("weft_feed_subscriptions") == 1
	},
		"the team following its feed")

	h.nats.Stop()
	testkit.Eventually(t, func() bool { return !h.bus.Connected() }, "the bus to see NATS gone")
	testkit.Eventually(t, func() bool { return h.metric("weft_feed_teams_without_feed") == 1 }, "the team marked as following no feed")

	// The origin changes the team meanwhile: its publish fails, the event stays pending.
	pending, err := h.origin.UpdateUser(context.Background(), team, h.user(team, 0), func(u *origin.User) { u.Title = "changed in the outage" })
	testkit.True(t, err != nil && pending != nil, "a change during the outage: event %v, err %v (want the event pending)", pending, err)

	// Warm: served, over the socket and /api.
	for i := range 5 {
		if f := a.request("users.info", map[string]any{"users": []string{h.user(team, 3)}}); !f.OK {
			t.Fatalf("query %d on a warm team during the outage: %s", i, f.raw)
		}
		if st, body := h.api(h.token(team, h.user(team, 4)), "ping", nil); st != http.StatusOK {
			t.Fatalf("/api %d on a warm team during the outage: %d %s", i, st, body["error"])
		}
	}
	// Cold: overloaded with a retry_after_ms, over /api and at the WebSocket handshake.
	st, body := h.api(h.token(h.other, h.user(h.other, 1)), "ping", nil)
	var e protocol.Error
	json.Unmarshal(body["error"], &e)
	if st != http.StatusServiceUnavailable || e.Code != protocol.CodeOverloaded || e.RetryAfterMS <= 0 {
		t.Fatalf("/api on a cold team during the outage: %d %s", st, body["error"])
	}
	conn, resp, err := h.dialRaw(h.token(h.other, h.user(h.other, 1)), "")
	if err == nil {
		conn.CloseNow()
		t.Fatal("a session on a cold team opened during the outage")
	}
	testkit.True(t, resp != nil && resp.StatusCode == http.StatusServiceUnavailable, "cold handshake status %v", resp)
	raw, _ := io.ReadAll(resp.Body)
	var he struct {
		Error protocol.Error `json:"error"`
	}
	json.Unmarshal(raw, &he)
	testkit.True(t, he.Error.Code == protocol.CodeOverloaded && he.Error.RetryAfterMS > 0, "cold handshake body %s", raw)
	testkit.Equal(t, h.edge.Teams().Lookup(h.other) == nil, true, "cold team not loaded")

	h.nats.Start()
	// The origin publishes its pending event; both sessions get it once, after the first.
	waitAll(t, []*wsClient{a, b}, pending.Seq)
	testkit.Eventually(t, func() bool { return h.metric("weft_feed_teams_without_feed") == 0 }, "the team following its feed again")
	last := h.markerEvent(team)
	waitAll(t, []*wsClient{a, b}, last.Seq)
	for _, c := range []*wsClient{a, b} {
		checkStream(t, c, []int64{first.Seq, pending.Seq, last.Seq})
		ended, err := c.ended()
		testkit.True(t, !ended, "%s disconnected: %v", c.user, err)
	}
	if st, body := h.api(h.token(h.other, h.user(h.other, 1)), "ping", nil); st != http.StatusOK {
		t.Fatalf("cold team after the outage: %d %s", st, body["error"])
	}
}
