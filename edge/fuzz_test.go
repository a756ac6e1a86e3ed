package edge

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/protocol"
)

var fuzzStore = sync.OnceValues(func() (*cache.Store, error) {
	size, err := reference.SizeByName("tiny")
	if err != nil {
		return nil, err
	}
	w, err := reference.NewWorld(7, size)
	if err != nil {
		return nil, err
	}
	o, err := reference.NewServer(reference.ServerConfig{World: w})
	if err != nil {
		return nil, err
	}
	team := o.TeamIDs()[0]
	users := o.Users(team)
	// A private channel the caller (user 1) is not in.
	if _, err := o.CreateChannel(context.Background(), team, "private-room", users[2].ID, true); err != nil {
		return nil, err
	}
	st := cache.NewStore(team)
	st.ApplyUsers(users)
	st.ApplyChannels(o.Channels(team))
	st.ApplyMemberships(o.Memberships(team))
	info, _ := o.Team(team)
	st.SetInfo(info)
	// The typo fallback stays off: its bleve workers would outlive the fuzz target.
	st.SetFollower(index.New(st, index.Config{NoFuzzy: true}))
	return st, nil
})

func FuzzDispatch(f *testing.F) {
	for _, s := range []struct{ method, params string }{
		{"boot", ``},
		{"ping", `null`},
		{"users.info", `{"users":["U00000001","U0ZZZZZZZ"]}`},
		{"users.info", `{"users":"x"}`},
		{"users.list", `{"limit":3}`},
		{"users.list", `{"cursor":"VTAwMDAwMDA1","limit":1000}`},
		{"users.list", `{"cursor":"!!","limit":"a"}`},
		{"channels.info", `{"channels":["C00000000","C00000008"]}`},
		{"channels.members", `{"channel":"C00000000","limit":2}`},
		{"channels.members", `{"channel":"C00000008"}`},
		{"users.channels", `{"user":"U00000002","cursor":"QzAwMDAwMDAx"}`},
		{"users.channels", `{"limit":-1}`},
		{"autocomplete", `{"query":"x"}`},
		{"", `[]`},
	} {
		f.Add(s.method, []byte(s.params))
	}
	st, err := fuzzStore()
	if err != nil {
		f.Fatal(err)
	}
	cs, err := newCursors([][]byte{make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	known := map[string]bool{protocol.CodeInvalidRequest: true, protocol.CodeUnknownMethod: true, protocol.CodeNotFound: true}
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		c := &call{ctx: context.Background(), team: "T00000001", user: "U00000001", store: st, cursors: cs, params: params}
		result, e := invoke(method, c)
		if e != nil {
			if e.Code == protocol.CodeInternal {
				if m, ok := methods[method]; ok {
					m(c) // a panic here shows where
				}
				t.Fatalf("%s %q: internal error %v", method, params, e)
			}
			if !known[e.Code] {
				t.Fatalf("%s %q: unexpected error code %q", method, params, e.Code)
			}
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(result, &obj); err != nil {
			t.Fatalf("%s %q: result %q is not a JSON object: %v", method, params, result, err)
		}
		if !json.Valid(protocol.AppendReply(nil, new(int64), result, nil)) {
			t.Fatalf("%s: reply is not JSON", method)
		}
	})
}

// FuzzCursorOpen: no cursor makes open panic, and none opens but one sealed for its scope.
func FuzzCursorOpen(f *testing.F) {
	cs, err := newCursors([][]byte{make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	scope := cursorScope{team: "T1", caller: "U1", method: "users.list"}
	f.Add(cs.seal(scope, "VTAwMDAwMDAx"), "U1")
	f.Add("VTAwMDAwMDAx", "U1")
	f.Add("", "U2")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "U1")
	f.Fuzz(func(t *testing.T, cursor, caller string) {
		sc := scope
		sc.caller = caller
		pos, ok := cs.open(sc, cursor)
		if !ok || cursor == "" {
			return
		}
		if pos == "" {
			t.Fatalf("%q opened to an empty position", cursor)
		}
		// It opened: it must be a sealing of pos for this scope (the fuzzer cannot forge one,
		// so only the seeds' own cursor may open, and only for its caller).
		if caller != "U1" {
			t.Fatalf("%q, sealed for U1, opened for %q", cursor, caller)
		}
	})
}
