package protocol

import (
	"encoding/json"
	"math"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		frame  string
		id     *int64 // the id the request (or its error reply) carries
		method string
		params string
		err    string // the error message; "" for a valid request
	}{
		{frame: `{"id":1,"method":"ping"}`, id: ptr(1), method: "ping"},
		{frame: `{"id":7,"method":"users.info","params":{"users":["U1"]}}`, id: ptr(7), method: "users.info", params: `{"users":["U1"]}`},
		{frame: `{"id":-9223372036854775808,"method":"boot"}`, id: ptr(math.MinInt64), method: "boot"},
		{frame: `{"id":9223372036854775808,"method":"boot"}`, err: "id must be an integer"},
		{frame: `{"id":1e3,"method":"ping"}`, err: "id must be an integer"},
		{frame: `{"id":"1","method":"ping"}`, err: "id must be an integer"},
		{frame: `{"id":null,"method":"ping"}`, err: "missing id"},
		{frame: `{"method":"ping"}`, err: "missing id"},
		{frame: `{"id":3,"method":""}`, id: ptr(3), err: "missing method"},
		{frame: `{"id":3}`, id: ptr(3), err: "missing method"},
	} {
		req, e := DecodeRequest([]byte(tc.frame))
		switch {
		case tc.err != "" && (e == nil || e.Code != CodeInvalidRequest || e.Message != tc.err):
			t.Errorf("%s: error %+v, want invalid_request %q", tc.frame, e, tc.err)
		case tc.err == "" && e != nil:
			t.Errorf("%s: error %v", tc.frame, e)
		case (req.ID == nil) != (tc.id == nil) || (req.ID != nil && *req.ID != *tc.id):
			t.Errorf("%s: id %v, want %v", tc.frame, deref(req.ID), deref(tc.id))
		case req.Method != tc.method || string(req.Params) != tc.params:
			t.Errorf("%s: method %q params %q, want %q %q", tc.frame, req.Method, req.Params, tc.method, tc.params)
		}
	}
	for _, frame := range []string{`[]`, `null`, `"x"`, `{`, ``, "\xff", `{"id":1,"method":1}`} {
		if _, e := DecodeRequest([]byte(frame)); e == nil || e.Code != CodeInvalidRequest {
			t.Errorf("%q: error %v, want invalid_request", frame, e)
		}
	}
}

// What the client encodes, the server decodes to the same id, method and params.
func TestRequestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		id     int64
		method string
		params []byte
	}{
		{1, "ping", nil},
		{math.MaxInt64, "users.info", []byte(`{"users":["U1","U2"]}`)},
		{-5, "we\"ird\u2028\x00method", []byte(`null`)},
	} {
		frame := AppendRequest(nil, tc.id, tc.method, tc.params)
		if !json.Valid(frame) {
			t.Fatalf("request frame is not JSON: %s", frame)
		}
		req, e := DecodeRequest(frame)
		if e != nil {
			t.Fatalf("%s: %v", frame, e)
		}
		if *req.ID != tc.id || req.Method != tc.method || string(req.Params) != string(tc.params) {
			t.Errorf("%s decoded as id %d method %q params %q", frame, *req.ID, req.Method, req.Params)
		}
	}
}

// reply is how a client reads a reply frame.
type reply struct {
	Type   string          `json:"type"`
	ID     *int64          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

func TestAppendReply(t *testing.T) {
	var r reply
	if err := json.Unmarshal(AppendReply(make([]byte, 0, 64), ptr(42), []byte(`{"n":1}`), nil), &r); err != nil {
		t.Fatal(err)
	}
	if r.Type != FrameReply || deref(r.ID) != "42" || !r.OK || string(r.Result) != `{"n":1}` || r.Error != nil {
		t.Errorf("success reply read back as %+v", r)
	}

	r = reply{}
	if err := json.Unmarshal(AppendReply(nil, ptr(7), nil, nil), &r); err != nil {
		t.Fatal(err)
	}
	if !r.OK || string(r.Result) != `{}` {
		t.Errorf("empty result read back as %+v, want {}", r)
	}

	r = reply{}
	e := &Error{Code: CodeRateLimited, Message: `quota "over"`, RetryAfterMS: 250, Status: 429}
	if err := json.Unmarshal(AppendReply(nil, nil, []byte(`{"ignored":true}`), e), &r); err != nil {
		t.Fatal(err)
	}
	if r.ID != nil || r.OK || r.Result != nil || r.Error == nil {
		t.Fatalf("error reply read back as %+v", r)
	}
	if *r.Error != (Error{Code: CodeRateLimited, Message: `quota "over"`, RetryAfterMS: 250}) {
		t.Errorf("error read back as %+v (Status must not travel)", *r.Error)
	}
}

func ptr(n int64) *int64 { return &n }

func deref(p *int64) string {
	if p == nil {
		return "nil"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}
