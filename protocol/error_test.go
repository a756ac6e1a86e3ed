package protocol

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Code: CodeNotFound}, "weft: not_found"},
		{Error{Code: CodeInvalidAuth, Message: "expired"}, "weft: invalid_auth: expired"},
		{Error{Code: CodeOverloaded, Message: "draining", Status: 503}, "weft: overloaded: draining (HTTP 503)"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
	if got := (&Error{RetryAfterMS: 1500}).RetryAfter(); got != 1500*time.Millisecond {
		t.Errorf("RetryAfter %v", got)
	}
}

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		retryMS    int64
		retryAfter string // the header; "" = absent
	}{
		{0, ""},
		{1, "1"},
		{1000, "1"},
		{1001, "2"},
	} {
		w := httptest.NewRecorder()
		WriteError(w, http.StatusTooManyRequests, &Error{Code: CodeRateLimited, Message: "slow down", RetryAfterMS: tc.retryMS})
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
		}
		if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
			t.Errorf("retry %d ms: Retry-After %q, want %q", tc.retryMS, got, tc.retryAfter)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		e, _ := body["error"].(map[string]any)
		if body["ok"] != false || e["code"] != CodeRateLimited || e["message"] != "slow down" {
			t.Errorf("body %s", w.Body)
		}
		if _, has := e["retry_after_ms"]; has != (tc.retryMS > 0) {
			t.Errorf("retry %d ms: body %s", tc.retryMS, w.Body)
		}
	}
}
