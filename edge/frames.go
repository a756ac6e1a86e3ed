package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Error codes of PROTOCOL.md section 4.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeUnknownMethod     = "unknown_method"
	CodeNotFound          = "not_found"
	CodeInvalidAuth       = "invalid_auth"
	CodeRateLimited       = "rate_limited"
	CodeOverloaded        = "overloaded"
	CodeOriginUnavailable = "origin_unavailable"
	CodeTooLarge          = "too_large"
	CodeInternal          = "internal"
)

// Error is a protocol error: what a reply or an /api answer carries when ok is false.
type Error struct {
	Code         string `json:"code"`
	Message      string `json:"message,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// request is a client frame once its envelope is read. ID is nil when none could be read.
type request struct {
	ID     *int64
	Method string
	Params json.RawMessage
}

type wireRequest struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// decodeRequest reads a client frame. It returns the request (with whatever ID it could read)
// and an error for a frame that is not a well-formed request; the caller replies to it.
func decodeRequest(data []byte) (request, *Error) {
	var w wireRequest
	if err := json.Unmarshal(data, &w); err != nil {
		return request{}, errorf(CodeInvalidRequest, "frame is not a JSON object: %v", err)
	}
	var r request
	if len(w.ID) > 0 && !bytes.Equal(w.ID, []byte("null")) {
		id, err := strconv.ParseInt(string(w.ID), 10, 64)
		if err != nil {
			return r, errorf(CodeInvalidRequest, "id must be an integer")
		}
		r.ID = &id
	}
	if r.ID == nil {
		return r, errorf(CodeInvalidRequest, "missing id")
	}
	if w.Method == "" {
		return r, errorf(CodeInvalidRequest, "missing method")
	}
	r.Method, r.Params = w.Method, w.Params
	return r, nil
}

// appendReply appends a reply frame. result must already be JSON (nil: {}).
func appendReply(b []byte, id *int64, result []byte, e *Error) []byte {
	b = append(b, `{"type":"reply","id":`...)
	if id == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *id, 10)
	}
	if e != nil {
		b = append(b, `,"ok":false,"error":`...)
		eb, _ := json.Marshal(e)
		b = append(b, eb...)
		return append(b, '}')
	}
	b = append(b, `,"ok":true,"result":`...)
	if len(result) == 0 {
		result = []byte("{}")
	}
	b = append(b, result...)
	return append(b, '}')
}

// Hello is the first frame of every connection.
type Hello struct {
	Type        string `json:"type"`
	Protocol    string `json:"protocol"`
	Session     string `json:"session"`
	Team        string `json:"team"`
	User        string `json:"user"`
	Node        string `json:"node"`
	Seq         int64  `json:"seq"`
	Resumed     bool   `json:"resumed"`
	HeartbeatMS int64  `json:"heartbeat_ms"`
}

// Goodbye reasons of PROTOCOL.md section 3.
const (
	ReasonDraining     = "draining"
	ReasonOverloaded   = "overloaded"
	ReasonSlowConsumer = "slow_consumer"
	ReasonMoved        = "moved"
	ReasonPolicy       = "policy"
)

// Goodbye is sent before the server closes a connection on purpose.
type Goodbye struct {
	Type             string `json:"type"`
	Reason           string `json:"reason"`
	ReconnectAfterMS int64  `json:"reconnect_after_ms"`
}

func goodbyeFrame(reason string, after time.Duration) []byte {
	b, _ := json.Marshal(Goodbye{Type: "goodbye", Reason: reason, ReconnectAfterMS: after.Milliseconds()})
	return b
}

// Close codes of PROTOCOL.md section 4.
const (
	closeSlowConsumer = 4008
	closeMoved        = 4009
)
