package protocol

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeRequest: whatever a client sends, the server either reads a request with an id
// and a method or has an invalid_request error to reply with, and the reply is JSON that
// carries the id back.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"ping"}`,
		`{"id":7,"method":"users.info","params":{"users":["U1","U2"]}}`,
		`{"id":-9223372036854775808,"method":"boot","params":null}`,
		`{"id":9223372036854775808,"method":"boot"}`,
		`{"id":1e3,"method":"ping"}`,
		`{"id":null,"method":"ping"}`,
		`{"id":"1","method":"ping"}`,
		`{"id":1,"method":""}`,
		`{"id":1,"method":1}`,
		`{"id":1,"method":"ping","id":2}`,
		`{"ID":3,"METHOD":"ping"}`,
		`[]`, `null`, `"x"`, `{`, ``, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, e := DecodeRequest(data)
		if e != nil {
			if e.Code != CodeInvalidRequest {
				t.Fatalf("error code %q", e.Code)
			}
			if !json.Valid(AppendReply(nil, req.ID, nil, e)) {
				t.Fatalf("error reply is not JSON: %s", AppendReply(nil, req.ID, nil, e))
			}
			return
		}
		if req.ID == nil || req.Method == "" {
			t.Fatalf("accepted %q without an id or a method: %+v", data, req)
		}
		if len(req.Params) > 0 && !json.Valid(req.Params) {
			t.Fatalf("params %q are not JSON", req.Params)
		}
		var back struct {
			ID *int64 `json:"id"`
		}
		if err := json.Unmarshal(AppendReply(nil, req.ID, []byte(`{}`), nil), &back); err != nil || back.ID == nil || *back.ID != *req.ID {
			t.Fatalf("reply to id %d does not carry it back: %v", *req.ID, err)
		}
		// Encoding what was read and reading it again gives the same request.
		again, e := DecodeRequest(AppendRequest(nil, *req.ID, req.Method, req.Params))
		if e != nil || *again.ID != *req.ID || again.Method != req.Method {
			t.Fatalf("re-encoded %+v reads back as %+v, %v", req, again, e)
		}
	})
}
