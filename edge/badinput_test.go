package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
)

// nextReply sends data and waits for the reply that follows everything received so far.
func (c *wsClient) nextReply(typ websocket.MessageType, data []byte) frame {
	c.t.Helper()
	before := len(c.all())
	c.sendType(typ, data)
	var got frame
	testkit.Eventually(c.t, func() bool {
		for _, f := range c.all()[before:] {
			if f.Type == "reply" {
				got = f
				return true
			}
		}
		return false
	}, "a reply")
	return got
}

func (c *wsClient) ping() {
	c.t.Helper()
	if f := c.request("ping", nil); !f.OK || string(f.Result) != "{}" {
		c.t.Fatalf("ping after bad input: %s", f.raw)
	}
}

func TestBadInputGetsAnswers(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.dial(h.team, h.user(h.team, 1), "")
	ids101 := make([]string, 101)
	for i := range ids101 {
		ids101[i] = fmt.Sprintf("U%08d", i)
	}
	big := `{"id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 70<<10) + `"}}`
	params := func(id int, method string, p any) string {
		b, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": p})
		return string(b)
	}
	id := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		what  string
		typ   websocket.MessageType
		frame string
		id    *int64
		code  string
	}{
		{"frame over 64 KiB", websocket.MessageText, big, nil, protocol.CodeTooLarge},
		{"not JSON", websocket.MessageText, "hello?", nil, protocol.CodeInvalidRequest},
		{"a JSON array", websocket.MessageText, "[1,2]", nil, protocol.CodeInvalidRequest},
		{"binary frame", websocket.MessageBinary, `{"id":2,"method":"ping"}`, nil, protocol.CodeInvalidRequest},
		{"missing id", websocket.MessageText, `{"method":"ping"}`, nil, protocol.CodeInvalidRequest},
		{"fractional id", websocket.MessageText, `{"id":1.5,"method":"ping"}`, nil, protocol.CodeInvalidRequest},
		{"string id", websocket.MessageText, `{"id":"7","method":"ping"}`, nil, protocol.CodeInvalidRequest},
		{"missing method", websocket.MessageText, `{"id":3}`, id(3), protocol.CodeInvalidRequest},
		{"unknown method", websocket.MessageText, `{"id":4,"method":"users.delete"}`, id(4), protocol.CodeUnknownMethod},
		{"users not a list", websocket.MessageText, params(5, "users.info", map[string]any{"users": "x"}), id(5), protocol.CodeInvalidRequest},
		{"no users", websocket.MessageText, params(6, "users.info", map[string]any{"users": []string{}}), id(6), protocol.CodeInvalidRequest},
		{"101 users", websocket.MessageText, params(7, "users.info", map[string]any{"users": ids101}), id(7), protocol.CodeInvalidRequest},
		{"no params", websocket.MessageText, `{"id":8,"method":"channels.info"}`, id(8), protocol.CodeInvalidRequest},
		{"limit not a number", websocket.MessageText, params(9, "users.list", map[string]any{"limit": "a"}), id(9), protocol.CodeInvalidRequest},
		{"limit 0", websocket.MessageText, params(10, "users.list", map[string]any{"limit": 0}), id(10), protocol.CodeInvalidRequest},
		{"limit 1001", websocket.MessageText, params(11, "users.list", map[string]any{"limit": 1001}), id(11), protocol.CodeInvalidRequest},
		{"params not an object", websocket.MessageText, `{"id":12,"method":"users.list","params":[1]}`, id(12), protocol.CodeInvalidRequest},
		{"bad cursor", websocket.MessageText, params(13, "users.list", map[string]any{"cursor": "!!"}), id(13), protocol.CodeInvalidRequest},
		{"members without channel", websocket.MessageText, params(14, "channels.members", map[string]any{}), id(14), protocol.CodeInvalidRequest},
		{"members of no channel", websocket.MessageText, params(15, "channels.members", map[string]any{"channel": "C0ZZZZZZZ"}), id(15), protocol.CodeNotFound},
	} {
		f := c.nextReply(tc.typ, []byte(tc.frame))
		okID := (tc.id == nil && f.ID == nil) || (tc.id != nil && f.ID != nil && *f.ID == *tc.id)
		if f.OK || f.Error == nil || f.Error.Code != tc.code || !okID {
			t.Errorf("%s: reply %s, want %s with id %v", tc.what, f.raw, tc.code, tc.id)
		}
		c.ping()
	}
	// Unknown fields are ignored.
	if f := c.nextReply(websocket.MessageText, []byte(`{"id":20,"method":"ping","x":1,"params":{"y":2}}`)); !f.OK {
		t.Errorf("unknown fields: %s", f.raw)
	}
	if done, err := c.ended(); done {
		t.Fatalf("connection ended: %v", err)
	}

	// The same over /api, with HTTP statuses.
	tok := h.token(h.team, h.user(h.team, 1))
	for _, tc := range []struct {
		what, method, body string
		status             int
		code               string
	}{
		{"unknown method", "users.delete", `{}`, http.StatusNotFound, protocol.CodeUnknownMethod},
		{"not JSON", "users.list", `hello?`, http.StatusBadRequest, protocol.CodeInvalidRequest},
		{"users not a list", "users.info", `{"users":"x"}`, http.StatusBadRequest, protocol.CodeInvalidRequest},
		{"limit not a number", "users.list", `{"limit":"a"}`, http.StatusBadRequest, protocol.CodeInvalidRequest},
		{"body over 64 KiB", "users.list", `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge},
		{"members of no channel", "channels.members", `{"channel":"C0ZZZZZZZ"}`, http.StatusNotFound, protocol.CodeNotFound},
	} {
		status, body := h.apiRaw(tok, tc.method, []byte(tc.body))
		var e protocol.Error
		json.Unmarshal(body["error"], &e)
		if status != tc.status || string(body["ok"]) != "false" || e.Code != tc.code {
			t.Errorf("/api %s: %d %v, want %d %s", tc.what, status, body, tc.status, tc.code)
		}
	}
}

// TestPipelinedRequestsInOrder sends many requests without waiting for any reply (more than
// the 64 in flight an earlier version capped, some ids repeated, which it refused) and checks
// that each gets its own reply, in the order sent: requests on one connection are handled one
// at a time, in order (docs/protocol.md section 3).
func TestPipelinedRequestsInOrder(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.RequestRate = -1 }})
	c := h.dial(h.team, h.user(h.team, 1), "")
	users := h.origin.Users(h.team)
	const n = 300
	want := make([]string, n) // what reply i answers: "ping" or the user asked about
	var batch [][]byte
	for i := range n {
		id := i%50 + 1 // every id is used six times
		if i%3 == 0 {
			want[i] = "ping"
			batch = append(batch, fmt.Appendf(nil, `{"id":%d,"method":"ping"}`, id))
		} else {
			want[i] = users[i%len(users)].ID
			batch = append(batch, fmt.Appendf(nil, `{"id":%d,"method":"users.info","params":{"users":[%q]}}`, id, want[i]))
		}
	}
	for _, f := range batch { // all sent before any reply is read
		c.send(f)
	}
	var replies []frame
	testkit.Eventually(t, func() bool {
		replies = replies[:0]
		for _, f := range c.all() {
			if f.Type == protocol.FrameReply {
				replies = append(replies, f)
			}
		}
		return len(replies) >= n
	}, fmt.Sprintf("%d replies", n))
	if len(replies) != n {
		t.Fatalf("%d replies to %d requests", len(replies), n)
	}
	for i, f := range replies {
		if !f.OK || f.ID == nil || *f.ID != int64(i%50+1) {
			t.Fatalf("reply %d: %s, want ok with id %d", i, f.raw, i%50+1)
		}
		var r struct {
			Users []struct {
				ID string `json:"id"`
			} `json:"users"`
		}
		json.Unmarshal(f.Result, &r)
		got := "ping"
		if len(r.Users) > 0 {
			got = r.Users[0].ID
		}
		if got != want[i] {
			t.Fatalf("reply %d answers %s, want %s: replies out of request order", i, got, want[i])
		}
	}
}

func TestPolicyGoodbye(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.dial(h.team, h.user(h.team, 1), "")
	for range 40 {
		if done, _ := c.ended(); done {
			break
		}
		c.conn.Write(t.Context(), websocket.MessageText, []byte("garbage"))
	}
	testkit.Eventually(t, func() bool { done, _ := c.ended(); return done }, "the connection to end")
	_, err := c.ended()
	frames := c.all()
	last := frames[len(frames)-1]
	if last.Type != "goodbye" || last.Reason != protocol.ReasonPolicy {
		t.Errorf("last frame %s, want goodbye policy", last.raw)
	}
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("connection ended with %v, want close 1008", err)
	}
	if n := len(frames) - 1; n != 16 {
		t.Errorf("%d error replies before the goodbye, want 16", n)
	}
	if v := h.metric("weft_edge_policy_closes_total"); v != 1 {
		t.Errorf("policy closes = %v", v)
	}

	// A frame past the hard read limit ends the connection at once.
	c2 := h.dial(h.team, h.user(h.team, 2), "")
	c2.conn.Write(t.Context(), websocket.MessageText, make([]byte, 17*64<<10))
	testkit.Eventually(t, func() bool { done, _ := c2.ended(); return done }, "the connection to end")
	if _, err := c2.ended(); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("huge frame: connection ended with %v, want close 1009", err)
	}

	// The node stays up.
	h.dial(h.team, h.user(h.team, 3), "").ping()
}

func TestBadTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	user := h.user(h.team, 1)
	otherKeys, _ := token.New([]byte("another-secret-0123456789"))
	wrongSecret, _ := otherKeys.Issue(h.team, user, time.Hour)
	expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "team": h.team,
		"exp": time.Now().Add(-time.Hour).Unix()}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": user, "team": h.team,
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	notInTeam := h.token(h.team, h.user(h.other, 1))

	checkBody := func(what string, status int, body []byte) {
		t.Helper()
		var b struct {
			OK    *bool           `json:"ok"`
			Error *protocol.Error `json:"error"`
		}
		if status != http.StatusUnauthorized || json.Unmarshal(body, &b) != nil || b.OK == nil || *b.OK ||
			b.Error == nil || b.Error.Code != protocol.CodeInvalidAuth {
			t.Errorf("%s: %d %s, want 401 invalid_auth", what, status, body)
		}
	}
	for name, tok := range map[string]string{"missing": "", "garbage": "not.a.token", "wrong secret": wrongSecret,
		"expired": expired, "alg none": none} {
		_, resp, err := h.dialRaw(tok, "")
		if err == nil || resp == nil {
			t.Errorf("/ws with %s token: err %v", name, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		checkBody("/ws "+name, resp.StatusCode, b)
		status, body := h.api(tok, "ping", nil)
		raw, _ := json.Marshal(body)
		checkBody("/api "+name, status, raw)
	}
	_, resp, err := h.dialRaw(notInTeam, "")
	if err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/ws as a user of another team: %v %v", err, resp)
	}

	// The token query parameter is the browser's way in.
	conn, _, err := websocket.Dial(t.Context(), h.wsURL("token="+h.token(h.team, user)),
		&websocket.DialOptions{HTTPClient: h.client, Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatalf("token in the query: %v", err)
	}
	_, b, err := conn.Read(t.Context())
	conn.CloseNow()
	if err != nil || !strings.Contains(string(b), `"type":"hello"`) {
		t.Errorf("token in the query: %s %v", b, err)
	}
	_, resp, err = websocket.Dial(t.Context(), h.wsURL("token=junk"), &websocket.DialOptions{HTTPClient: h.client})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("junk token in the query: %v", err)
	}
}
