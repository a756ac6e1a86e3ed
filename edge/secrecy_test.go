package edge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// apiBytes posts params to /api/method as tok and returns the status and the body as sent.
func (h *harness) apiBytes(tok, method string, params any) (int, []byte) {
	h.t.Helper()
	body, _ := json.Marshal(params)
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/api/"+method, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// secretChannel is a private channel of team that user is not in: made by creator when the
// world has none.
func (h *harness) secretChannel(team, user, creator string) string {
	h.t.Helper()
	mine := h.origin.ChannelsOf(team, user)
	for _, c := range h.origin.Channels(team) {
		if c.IsPrivate && !slices.Contains(mine, c.ID) {
			return c.ID
		}
	}
	ev := h.must(h.origin.CreateChannel(context.Background(), team, "secret", creator, true))
	if h.edge.Teams().Lookup(team) != nil {
		h.applied(team, ev.Seq)
	}
	return ev.Channel.ID
}

// TestCursorsRevealNothing: a cursor is good only for the page it continues. One written by the
// caller, for a private channel it is not in or for an ID that names nothing, and one handed
// to another caller, for another channel or another method, all get the same invalid_request,
// byte for byte. (Before, a cursor was the base64 of an ID: a non-member's users.channels with
// the cursor of a private channel's ID answered 200, one naming nothing 400.)
func TestCursorsRevealNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	users := h.activeUsers(h.team)
	me, other := users[1], users[2]
	tok := h.token(h.team, me)
	secret := h.secretChannel(h.team, me, other)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	var answers [][]byte
	ask := func(what, tok, method string, params map[string]any) {
		t.Helper()
		status, b := h.apiBytes(tok, method, params)
		if status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", what, status, b)
		}
		answers = append(answers, b)
	}
	ask("the cursor of a private channel's ID", tok, "users.channels", map[string]any{"cursor": b64(secret)})
	ask("the cursor of no ID", tok, "users.channels", map[string]any{"cursor": b64("C_NOTHING")})
	ask("garbage", tok, "users.channels", map[string]any{"cursor": "!!"})

	// Real cursors, out of their place.
	status, page := h.apiBytes(tok, "users.list", map[string]any{"limit": 1})
	var list struct {
		NextCursor string `json:"next_cursor"`
	}
	if json.Unmarshal(page, &list); status != http.StatusOK || list.NextCursor == "" {
		t.Fatalf("users.list: %d %s", status, page)
	}
	if strings.Contains(list.NextCursor, b64(h.activeUsers(h.team)[0])) {
		t.Errorf("the cursor %q shows the ID it stands for", list.NextCursor)
	}
	if status, b := h.apiBytes(tok, "users.list", map[string]any{"limit": 1, "cursor": list.NextCursor}); status != http.StatusOK {
		t.Fatalf("users.list with its own cursor: %d %s", status, b)
	}
	ask("another caller's cursor", h.token(h.team, other), "users.list", map[string]any{"limit": 1, "cursor": list.NextCursor})
	ask("another method's cursor", tok, "users.channels", map[string]any{"cursor": list.NextCursor})
	ask("another team's caller", h.token(h.other, h.activeUsers(h.other)[1]), "users.list", map[string]any{"cursor": list.NextCursor})
	for i, a := range answers[1:] {
		if !bytes.Equal(a, answers[0]) {
			t.Errorf("answer %d differs from the first:\n%s\n%s", i+2, a, answers[0])
		}
	}
}

// TestNotFoundIsNoAccess: for every method that takes an ID, what the caller may not see (a
// private channel it is not in, a user of another team) is answered exactly as what does not
// exist, byte for byte once the ID asked about is masked.
func TestNotFoundIsNoAccess(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	me := h.activeUsers(h.team)[1]
	tok := h.token(h.team, me)
	secret := h.secretChannel(h.team, me, h.activeUsers(h.team)[2])
	const nothingC, nothingU = "C_NOTHING", "U_NOTHING"
	foreignUser := h.activeUsers(h.other)[1]
	for _, tc := range []struct {
		method         string
		hidden, absent string
		params         func(id string) map[string]any
	}{
		{"channels.info", secret, nothingC, func(id string) map[string]any { return map[string]any{"channels": []string{id}} }},
		{"channels.members", secret, nothingC, func(id string) map[string]any { return map[string]any{"channel": id} }},
		{"users.info", foreignUser, nothingU, func(id string) map[string]any { return map[string]any{"users": []string{id}} }},
		{"users.channels", foreignUser, nothingU, func(id string) map[string]any { return map[string]any{"user": id} }},
	} {
		s1, hidden := h.apiBytes(tok, tc.method, tc.params(tc.hidden))
		s2, absent := h.apiBytes(tok, tc.method, tc.params(tc.absent))
		hidden = bytes.ReplaceAll(hidden, []byte(tc.hidden), []byte("<id>"))
		absent = bytes.ReplaceAll(absent, []byte(tc.absent), []byte("<id>"))
		if s1 != s2 || !bytes.Equal(hidden, absent) {
			t.Errorf("%s: what the caller may not see: %d %s\nwhat does not exist: %d %s", tc.method, s1, hidden, s2, absent)
		}
	}
}

// TestOperatorEndpointsOffTheClientPort: the client port has /ws, /api and a bare /healthz and
// /readyz, nothing else; /metrics, the reasons of /readyz and the loaded teams are on the
// operator's listener, and even there no series names a team. (Before, an anonymous GET
// /metrics on the client port listed the loaded teams with their index sizes.)
func TestOperatorEndpointsOffTheClientPort(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.dial(h.team, h.activeUsers(h.team)[1], "")
	var res json.RawMessage
	c.call("autocomplete", map[string]any{"query": "a"}, &res) // the index is built
	for _, path := range []string{"/metrics", "/debug/teams", "/debug/pprof/"} {
		if status, body := h.get(path); status != http.StatusNotFound {
			t.Errorf("client port %s: %d %.80q, want 404", path, status, body)
		}
	}
	if status, body := h.get("/readyz"); status != http.StatusOK || body != "ready\n" {
		t.Errorf("client port /readyz: %d %q", status, body)
	}
	status, metrics := h.opsGet("/metrics")
	if status != http.StatusOK || !strings.Contains(metrics, "weft_edge_index_bytes") {
		t.Fatalf("operator /metrics: %d", status)
	}
	if strings.Contains(metrics, h.team) {
		t.Errorf("operator /metrics names team %s", h.team)
	}
	status, teams := h.opsGet("/debug/teams?n=5")
	var out struct {
		Loaded int `json:"loaded"`
		Teams  []struct {
			Team       string `json:"team"`
			Sessions   int    `json:"sessions"`
			IndexBytes int64  `json:"index_bytes"`
		} `json:"teams"`
	}
	if err := json.Unmarshal([]byte(teams), &out); status != http.StatusOK || err != nil || out.Loaded == 0 ||
		out.Teams[0].Team != h.team || out.Teams[0].Sessions != 1 || out.Teams[0].IndexBytes == 0 {
		t.Errorf("operator /debug/teams: %d %s", status, teams)
	}
}
