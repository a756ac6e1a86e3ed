package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// TestDeactivatedUserRefused: a user the origin has deactivated holds a token that still
// verifies (tokens are not revoked), and is refused on /ws and /api with 403
// account_inactive. (Before, the deactivated user connected and called methods.)
func TestDeactivatedUserRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	user := h.activeUsers(h.team)[1]
	tok := h.token(h.team, user)
	h.must(h.origin.UpdateUser(ctx, h.team, user, func(u *origin.User) { u.Deleted = true }))

	_, resp, err := h.dialRaw(tok, "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a deactivated user's /ws: err %v, response %v; want 403", err, resp)
	}
	status, body := h.api(tok, "users.info", map[string]any{"users": []string{user}})
	var e protocol.Error
	json.Unmarshal(body["error"], &e)
	if status != http.StatusForbidden || e.Code != protocol.CodeAccountInactive {
		t.Fatalf("a deactivated user's /api: %d %v; want 403 account_inactive", status, body)
	}
	// Another user of the team is not affected.
	h.dial(h.team, h.activeUsers(h.team)[2], "")
}

// TestDeactivationEndsSessions: a user_change that deactivates a user ends that user's
// sessions at once with goodbye account_inactive and close 4011, after the event; the
// team's other sessions stay and see the event.
func TestDeactivationEndsSessions(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	users := h.activeUsers(h.team)
	gone, stays := users[1], users[2]
	a1, a2 := h.dial(h.team, gone, ""), h.dial(h.team, gone, "")
	b := h.dial(h.team, stays, "")
	ev := h.must(h.origin.UpdateUser(context.Background(), h.team, gone, func(u *origin.User) { u.Deleted = true }))
	for _, c := range []*wsClient{a1, a2} {
		bye := c.waitFrame("goodbye", func(f frame) bool { return f.Type == "goodbye" })
		testkit.Eventually(t, func() bool { done, _ := c.ended(); return done }, "the deactivated user's connection to end")
		if _, err := c.ended(); bye.Reason != protocol.ReasonAccountInactive || websocket.CloseStatus(err) != protocol.CloseAccountInactive {
			t.Errorf("goodbye %s, ended with %v; want account_inactive and close %d", bye.raw, err, protocol.CloseAccountInactive)
		}
	}
	b.waitFrame("the user_change", func(f frame) bool { return f.Type == "event" && f.Seq == ev.Seq })
	if done, err := b.ended(); done {
		t.Fatalf("another user's session ended: %v", err)
	}
}

// TestSessionEndsWhenTokenExpires: a session ends with goodbye token_expired and close 4010
// when its token expires (its exp, plus the verifiers' Leeway); before, it went on for as long
// as the connection lasted. The token here expired 3.5 s ago (exp is read to the whole second:
// up to 4.5 s), inside the Leeway: it verifies, and the session has at most 1.5 s.
func TestSessionEndsWhenTokenExpires(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	user := h.activeUsers(h.team)[1]
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "team": h.team,
		"exp": float64(time.Now().Add(-3500*time.Millisecond).UnixMilli()) / 1000}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := h.dialRaw(tok, "")
	if err != nil {
		t.Fatalf("a token inside the leeway: %v", err)
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var bye protocol.Goodbye
	for bye.Type != protocol.FrameGoodbye {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("the session ended without a goodbye: %v", err)
		}
		json.Unmarshal(b, &bye)
	}
	_, _, err = conn.Read(ctx)
	if bye.Reason != protocol.ReasonTokenExpired || websocket.CloseStatus(err) != protocol.CloseTokenExpired {
		t.Fatalf("goodbye %+v, then %v; want token_expired and close %d", bye, err, protocol.CloseTokenExpired)
	}
}
