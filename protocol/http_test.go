package protocol

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckSubprotocol(t *testing.T) {
	for _, tc := range []struct {
		offers []string // Sec-WebSocket-Protocol header lines
		ok     bool
	}{
		{nil, true},
		{[]string{""}, true},
		{[]string{"weft.v1"}, true},
		{[]string{"chat, weft.v1"}, true},
		{[]string{"chat", " weft.v1 "}, true},
		{[]string{"weft.v2"}, false},
		{[]string{"chat, superchat"}, false},
		{[]string{"Weft.v1"}, false}, // subprotocol names are case-sensitive
		{[]string{"weft.v1x"}, false},
	} {
		h := http.Header{}
		for _, v := range tc.offers {
			h.Add("Sec-WebSocket-Protocol", v)
		}
		e := CheckSubprotocol(h)
		if (e == nil) != tc.ok {
			t.Errorf("offers %q: error %v, want ok %v", tc.offers, e, tc.ok)
		}
		if e != nil && (e.Code != CodeInvalidRequest || !strings.Contains(e.Message, Subprotocol)) {
			t.Errorf("offers %q: error %+v does not name %s", tc.offers, e, Subprotocol)
		}
	}
}

func TestAPIMethodAllowed(t *testing.T) {
	for _, method := range []string{"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		w := httptest.NewRecorder()
		if APIMethodAllowed(w, httptest.NewRequest(method, "/api/users.info", nil)) {
			t.Errorf("%s allowed", method)
			continue
		}
		var body struct {
			OK    *bool  `json:"ok"`
			Error *Error `json:"error"`
		}
		err := json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" || err != nil ||
			body.OK == nil || *body.OK || body.Error == nil || body.Error.Code != CodeInvalidRequest {
			t.Errorf("%s: %d Allow %q body %s", method, w.Code, w.Header().Get("Allow"), w.Body)
		}
	}
	w := httptest.NewRecorder()
	if !APIMethodAllowed(w, httptest.NewRequest("POST", "/api/users.info", nil)) || w.Body.Len() != 0 {
		t.Errorf("POST refused or answered: %d %s", w.Code, w.Body)
	}
}
