package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Request is a client frame once its envelope is read (section 3):
// {"id":<integer>,"method":"<name>","params":{...}}. ID is nil when none could be read.
type Request struct {
	ID     *int64
	Method string
	Params json.RawMessage // as sent; nil when absent
}

type wireRequest struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// DecodeRequest reads a client frame. It returns the request, with whatever ID it could read,
// and an invalid_request error for a frame that is not a well-formed request: the server
// replies with it, to that ID when it has one.
func DecodeRequest(data []byte) (Request, *Error) {
	var w wireRequest
	if err := json.Unmarshal(data, &w); err != nil {
		return Request{}, Errorf(CodeInvalidRequest, "frame is not a JSON object: %v", err)
	}
	var r Request
	if len(w.ID) > 0 && !bytes.Equal(w.ID, []byte("null")) {
		// Only an integer that fits int64: a float or a string id is refused rather than
		// rounded, so the reply's id is always the request's, byte for byte.
		id, err := strconv.ParseInt(string(w.ID), 10, 64)
		if err != nil {
			return r, Errorf(CodeInvalidRequest, "id must be an integer")
		}
		r.ID = &id
	}
	if r.ID == nil {
		return r, Errorf(CodeInvalidRequest, "missing id")
	}
	if w.Method == "" {
		return r, Errorf(CodeInvalidRequest, "missing method")
	}
	r.Method, r.Params = w.Method, w.Params
	return r, nil
}

// AppendRequest appends a request frame. params must already be JSON; nil leaves them out.
func AppendRequest(b []byte, id int64, method string, params []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":`...)
	m, _ := json.Marshal(method) // escapes as encoding/json does everywhere else; never fails
	b = append(b, m...)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// AppendReply appends a reply frame: {"type":"reply","id":…,"ok":true,"result":…} or, when e
// is not nil, {"type":"reply","id":…,"ok":false,"error":…}. A nil id is written as null (a
// frame whose id could not be read). result must already be JSON; empty means {}.
func AppendReply(b []byte, id *int64, result []byte, e *Error) []byte {
	b = append(b, `{"type":"reply","id":`...)
	if id == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *id, 10)
	}
	if e != nil {
		b = append(b, `,"ok":false,"error":`...)
		eb, _ := json.Marshal(e) // strings and an integer: never fails
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
