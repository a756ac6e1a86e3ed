package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
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
// as the connection lasted. The token here expired 3 s ago (exp is read to the whole second:
// up to 4 s), inside the Leeway: it verifies with a second to spare, and the session has at most 2 s.
func TestSessionEndsWhenTokenExpires(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	user := h.activeUsers(h.team)[1]
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "team": h.team,
		"exp": float64(time.Now().Add(-3*time.Second).UnixMilli()) / 1000}).SignedString([]byte(testSecret))
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

// TestAPIQuotaPerUser: /api calls have a quota per user, a session's rate and burst: one
// token's flood is refused past the burst with 429 rate_limited and retry_after_ms, and another
// user of the team is not held back. (Before, /api had no quota at all.)
func TestAPIQuotaPerUser(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.RequestRate, c.RequestBurst = 0.5, 3 }})
	users := h.activeUsers(h.team)
	tok := h.token(h.team, users[1])
	params := map[string]any{"users": []string{users[1]}}
	for i := range 3 {
		if status, body := h.api(tok, "users.info", params); status != http.StatusOK {
			t.Fatalf("call %d within the burst: %d %v", i+1, status, body)
		}
	}
	status, body := h.api(tok, "users.info", params)
	var e protocol.Error
	json.Unmarshal(body["error"], &e)
	if status != http.StatusTooManyRequests || e.Code != protocol.CodeRateLimited || e.RetryAfterMS <= 0 {
		t.Fatalf("a call past the burst: %d %v; want 429 rate_limited with retry_after_ms", status, body)
	}
	if status, body := h.api(h.token(h.team, users[2]), "users.info", params); status != http.StatusOK {
		t.Fatalf("another user: %d %v", status, body)
	}
	// Refused calls of methods a client made up are counted without their names.
	for i := range 5 {
		h.api(tok, fmt.Sprintf("made.up%d", i), params)
	}
	if _, m := h.opsGet("/metrics"); strings.Contains(m, "made.up") || !strings.Contains(m, `weft_edge_requests_total{method="unknown",outcome="rate_limited"} 5`) {
		t.Errorf("rate-limited made-up methods in /metrics:\n%s", m)
	}
}

// TestTokenInQueryOnlyOnWS: browsers cannot give a WebSocket handshake headers, so /ws takes
// the token in the query string; /api does not (query strings end up in logs and history),
// and says where it goes. No log line of the edge carries a token, whichever way it came.
func TestTokenInQueryOnlyOnWS(t *testing.T) {
	var logs testkit.SyncBuffer
	h := newHarness(t, harnessOpts{edge: func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	user := h.activeUsers(h.team)[1]
	tok := h.token(h.team, user)
	conn, _, err := h.dialRaw("", "token="+url.QueryEscape(tok))
	if err != nil {
		t.Fatalf("/ws with the token in the query: %v", err)
	}
	conn.CloseNow()
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/api/users.info?token="+url.QueryEscape(tok),
		strings.NewReader(`{"users":["`+user+`"]}`))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "Authorization header") {
		t.Fatalf("/api with the token in the query: %d %s; want 401 saying where the token goes", resp.StatusCode, b)
	}
	h.dialRaw("", "token=not-a-token."+tok[10:]) // refused: a token that fails is not logged either
	if strings.Contains(logs.String(), tok[len(tok)-20:]) {
		t.Fatalf("a token reached the edge's log:\n%s", logs.String())
	}
}
