package token

import (
	"net/http"
	"strings"
)

// FromRequest finds the token in r: an "Authorization: Bearer <token>" header, or, because
// browsers cannot set headers on a WebSocket handshake, the `token` query parameter. A bearer
// header wins when both are present. An Authorization header of another scheme is ignored.
//
// Query strings end up in access logs: whoever logs request URLs must redact this parameter.
func FromRequest(r *http.Request) (string, bool) {
	if t, ok := bearer(r.Header.Get("Authorization")); ok {
		return t, true
	}
	if r.URL == nil || r.URL.RawQuery == "" {
		return "", false
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t, true
	}
	return "", false
}

// bearer extracts the token from an Authorization header value. The scheme is case-insensitive
// (RFC 9110 section 11.1).
func bearer(h string) (string, bool) {
	const scheme = "Bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	return t, t != ""
}
