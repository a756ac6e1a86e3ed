package protocol

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error codes (docs/protocol.md section 8).
const (
	CodeInvalidRequest    = "invalid_request"
	CodeUnknownMethod     = "unknown_method"
	CodeNotFound          = "not_found"
	CodeInvalidAuth       = "invalid_auth"
	CodeAccountInactive   = "account_inactive" // the token is good, its user deactivated: 403
	CodeRateLimited       = "rate_limited"
	CodeOverloaded        = "overloaded"
	CodeOriginUnavailable = "origin_unavailable"
	CodeTooLarge          = "too_large"
	CodeInternal          = "internal"
)

// Error is the protocol's error object: what a reply with ok false, an /api answer with ok
// false and a refused handshake carry (docs/protocol.md sections 2, 3 and 8).
type Error struct {
	Code         string `json:"code"`
	Message      string `json:"message,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
	// Status is the HTTP status of a refused handshake or /api call, as a client read it; 0
	// for replies. It is not part of the JSON object.
	Status int `json:"-"`
}

// Errorf returns an Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	s := "weft: " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	return s
}

// RetryAfter is how long the server asked the caller to wait before trying again (0: it did
// not say).
func (e *Error) RetryAfter() time.Duration { return time.Duration(e.RetryAfterMS) * time.Millisecond }

// ErrorBody is the JSON body of a refused HTTP request: a refused handshake or an /api call
// that failed (section 2).
type ErrorBody struct {
	OK    bool   `json:"ok"` // always false
	Error *Error `json:"error"`
}

// WriteError answers a plain HTTP request with status and the protocol's error body. A
// RetryAfterMS becomes a Retry-After header too, in whole seconds rounded up, for HTTP clients
// that know nothing of weft.
func WriteError(w http.ResponseWriter, status int, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfterMS > 0 {
		h.Set("Retry-After", strconv.FormatInt((e.RetryAfterMS+999)/1000, 10))
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ErrorBody{OK: false, Error: e})
}
