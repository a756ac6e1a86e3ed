package edge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/protocol"
)

// TestSubprotocolNegotiation: a client that offers no subprotocol is spoken to in weft.v1; one
// that offers weft.v1 among others gets it; one that offers only others is refused at the
// handshake with a 400 that names weft.v1 (docs/protocol.md section 2).
func TestSubprotocolNegotiation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token(h.team, h.user(h.team, 1))
	for _, tc := range []struct {
		offer  []string
		chosen string // "" with offer nil: accepted without a subprotocol header
		refuse bool
	}{
		{offer: nil, chosen: ""},
		{offer: []string{"chat", protocol.Subprotocol}, chosen: protocol.Subprotocol},
		{offer: []string{"weft.v2"}, refuse: true},
		{offer: []string{"chat", "superchat"}, refuse: true},
	} {
		ws, resp, err := dialOffering(t, h.wsURL(""), tok, tc.offer)
		if tc.refuse {
			if err == nil {
				ws.CloseNow()
				t.Errorf("offer %q: accepted with subprotocol %q, want 400", tc.offer, ws.Subprotocol())
				continue
			}
			checkRefusal(t, resp, tc.offer)
			continue
		}
		if err != nil {
			t.Errorf("offer %q: %v", tc.offer, err)
			continue
		}
		if ws.Subprotocol() != tc.chosen {
			t.Errorf("offer %q: chosen %q, want %q", tc.offer, ws.Subprotocol(), tc.chosen)
		}
		// Spoken to in weft.v1 either way: a hello, then replies.
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Within)
		_, b, err := ws.Read(ctx)
		var hello protocol.Hello
		if err != nil || json.Unmarshal(b, &hello) != nil || hello.Type != protocol.FrameHello || hello.Protocol != protocol.Subprotocol {
			t.Errorf("offer %q: first frame %s, %v; want a weft.v1 hello", tc.offer, b, err)
		}
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"ping"}`)); err != nil {
			t.Errorf("offer %q: write: %v", tc.offer, err)
		}
		_, b, err = ws.Read(ctx)
		if err != nil || !strings.HasPrefix(string(b), `{"type":"reply","id":1,"ok":true`) {
			t.Errorf("offer %q: reply to ping %s, %v", tc.offer, b, err)
		}
		cancel()
		ws.CloseNow()
	}
}

// dialOffering opens a WebSocket to url offering the given subprotocols (none when nil).
func dialOffering(t *testing.T, url, tok string, offer []string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}, Subprotocols: offer})
}

// checkRefusal checks a handshake refused for its subprotocols: 400 and a JSON invalid_request
// error naming weft.v1.
func checkRefusal(t *testing.T, resp *http.Response, offer []string) {
	t.Helper()
	if resp == nil {
		t.Errorf("offer %q: no HTTP response", offer)
		return
	}
	var body struct {
		OK    *bool           `json:"ok"`
		Error *protocol.Error `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(raw, &body) != nil || body.OK == nil || *body.OK ||
		body.Error == nil || body.Error.Code != protocol.CodeInvalidRequest || !strings.Contains(body.Error.Message, protocol.Subprotocol) {
		t.Errorf("offer %q: %d %s, want 400 with an invalid_request error naming %s", offer, resp.StatusCode, raw, protocol.Subprotocol)
	}
}

// TestAPIPostOnly: /api/<method> answers POST only; any other method gets 405, Allow: POST and
// an invalid_request error, whatever the token (docs/protocol.md section 2).
func TestAPIPostOnly(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token(h.team, h.user(h.team, 1))
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(method, h.http.URL+"/api/users.list", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: %d Allow %q, want 405 Allow POST", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
		if method == http.MethodHead {
			continue // no body
		}
		var body struct {
			OK    *bool           `json:"ok"`
			Error *protocol.Error `json:"error"`
		}
		if json.Unmarshal(raw, &body) != nil || body.OK == nil || *body.OK || body.Error == nil || body.Error.Code != protocol.CodeInvalidRequest {
			t.Errorf("%s: body %s, want ok false and invalid_request", method, raw)
		}
	}
	if status, body := h.api(tok, "users.list", nil); status != http.StatusOK || string(body["ok"]) != "true" {
		t.Errorf("POST: %d %v", status, body)
	}
}
