package token

import (
	"net/http"
	"strings"
)

// FromHeader finds the token in r's "Authorization: Bearer <token>" header, the only place
// /api takes it. An Authorization header of another scheme is ignored.
func FromHeader(r *http.Request) (string, bool) {
	return bearer(r.Header.Get("Authorization"))
}

// FromRequest finds the token of a WebSocket handshake in r: an "Authorization: Bearer
// <token>" header, or, because browsers cannot set headers on a WebSocket handshake, the
// `token` query parameter. A bearer header wins when both are present. Only /ws takes a
// token in the query (FromHeader for the rest): query strings end up in access logs and
// browser history, and whoever logs request URLs must redact this parameter (weft logs none).
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

// Missing says why r carries no token a handler takes, and where it goes: one that came in the
// query string of a request other than /ws is named (its handler reads the header only).
func Missing(r *http.Request) string {
	if r.URL != nil && r.URL.Query().Has("token") {
		return "missing bearer token (a token in the query string is taken on /ws only: send it in the Authorization header)"
	}
	return "missing bearer token"
}
