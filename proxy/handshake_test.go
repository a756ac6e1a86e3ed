package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/protocol"
)

// TestSubprotocolThroughProxy: through a proxy, a client sees what an edge would tell it
// (docs/protocol.md section 2): no subprotocol offered, or weft.v1 among others, is spoken to in
// weft.v1; only other subprotocols are refused at the handshake with the edge's 400.
func TestSubprotocolThroughProxy(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	e := w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	team := w.origin.TeamIDs()[0]
	tok := w.token(team, w.origin.Users(team)[0].ID)

	for _, offer := range [][]string{nil, {"chat", protocol.Subprotocol}} {
		ws, _, err := dialOffering(t, p.url, tok, offer)
		if err != nil {
			t.Errorf("offer %q through the proxy: %v", offer, err)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, b, err := ws.Read(ctx)
		cancel()
		var hello protocol.Hello
		if err != nil || json.Unmarshal(b, &hello) != nil || hello.Type != protocol.FrameHello || hello.Protocol != protocol.Subprotocol {
			t.Errorf("offer %q through the proxy: first frame %s, %v; want a weft.v1 hello", offer, b, err)
		}
		if offer != nil && ws.Subprotocol() != protocol.Subprotocol {
			t.Errorf("offer %q through the proxy: chosen %q", offer, ws.Subprotocol())
		}
		ws.CloseNow()
	}

	for _, offer := range [][]string{{"weft.v2"}, {"chat", "superchat"}} {
		atProxy := refusal(t, p.url, tok, offer)
		atEdge := refusal(t, "http://"+e.addr, tok, offer)
		if atProxy != atEdge {
			t.Errorf("offer %q: the proxy answered %s, the edge %s", offer, atProxy, atEdge)
		}
		if !strings.HasPrefix(atProxy, "400 ") || !strings.Contains(atProxy, `"code":"invalid_request"`) ||
			!strings.Contains(atProxy, protocol.Subprotocol) {
			t.Errorf("offer %q: refused with %s, want 400 invalid_request naming %s", offer, atProxy, protocol.Subprotocol)
		}
	}
}

// dialOffering opens a WebSocket to base's /ws offering the given subprotocols (none when nil).
func dialOffering(t *testing.T, base, tok string, offer []string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}, Subprotocols: offer})
}

// refusal dials expecting a refused handshake and returns its status and body.
func refusal(t *testing.T, base, tok string, offer []string) string {
	t.Helper()
	ws, resp, err := dialOffering(t, base, tok, offer)
	if err == nil {
		ws.CloseNow()
		return "accepted with subprotocol " + ws.Subprotocol()
	}
	if resp == nil {
		return "no HTTP answer: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(bytes.TrimSpace(body))
}

// TestAPIPostOnlyThroughProxy: the proxy answers /api/<method> as an edge does: POST is
// forwarded, any other method gets the edge's 405 with Allow: POST.
func TestAPIPostOnlyThroughProxy(t *testing.T) {
	w := newWorld(t, "tiny", nil)
	e := w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	team := w.origin.TeamIDs()[0]
	tok := w.token(team, w.origin.Users(team)[0].ID)
	call := func(base, method string) (status int, allow, body string) {
		req, _ := http.NewRequest(method, base+"/api/users.list", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Allow"), string(b)
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		status, allow, body := call(p.url, method)
		eStatus, eAllow, eBody := call("http://"+e.addr, method)
		if status != http.StatusMethodNotAllowed || allow != "POST" || !strings.Contains(body, `"code":"invalid_request"`) {
			t.Errorf("%s through the proxy: %d Allow %q %s, want 405 Allow POST invalid_request", method, status, allow, body)
		}
		if status != eStatus || allow != eAllow || body != eBody {
			t.Errorf("%s: the proxy answered %d %q %s, the edge %d %q %s", method, status, allow, body, eStatus, eAllow, eBody)
		}
	}
	if status, _, body := call(p.url, http.MethodPost); status != http.StatusOK || !strings.HasPrefix(body, `{"ok":true`) {
		t.Errorf("POST through the proxy: %d %s", status, body)
	}
}
