package client

import (
	"encoding/json"
	"testing"
)

// TestCutEventForgetsTheStaleObject: a user_change or channel_change sent cut (the object's ID
// only) makes the Store forget the copy it holds, which is stale; a whole one replaces it; a
// cut message changes nothing held.
func TestCutEventForgetsTheStaleObject(t *testing.T) {
	st := newStore()
	st.putUsers(User{ID: "U1", Name: "ann", Updated: 1}, User{ID: "U2", Name: "bob", Updated: 1})
	st.putChannels(Channel{ID: "C1", Name: "general", Updated: 1})
	apply := func(seq int64, cut, raw string) {
		t.Helper()
		var f frame
		if err := json.Unmarshal([]byte(raw), &f); err != nil {
			t.Fatal(err)
		}
		ev, err := decodeEvent(seq, f.Event, f.Annotations)
		if err != nil {
			t.Fatal(err)
		}
		ev.Cut = f.Cut
		if ev.Cut != cut {
			t.Fatalf("seq %d: cut %q, want %q", seq, ev.Cut, cut)
		}
		st.apply(ev)
	}
	apply(5, "", `{"type":"event","seq":5,"event":{"type":"message","team":"T1","channel":"C1","user":"U2","ts":"1.1","text":"hi"}}`)
	apply(6, CutTooLarge, `{"type":"event","seq":6,"cut":"too_large","event":{"type":"message","team":"T1","channel":"C1","user":"U2","ts":"1.2","text":"long…"}}`)
	if _, ok := st.User("U2"); !ok {
		t.Fatal("a cut message made the Store forget its sender")
	}
	apply(7, CutTooLarge, `{"type":"event","seq":7,"cut":"too_large","event":{"type":"user_change","team":"T1","user":"U1"}}`)
	if _, ok := st.User("U1"); ok {
		t.Fatal("the Store kept a user whose change came cut")
	}
	apply(8, CutTooLarge, `{"type":"event","seq":8,"cut":"too_large","event":{"type":"channel_change","team":"T1","channel":"C1"}}`)
	if _, ok := st.Channel("C1"); ok {
		t.Fatal("the Store kept a channel whose change came cut")
	}
	apply(9, "", `{"type":"event","seq":9,"event":{"type":"user_change","team":"T1","user":{"id":"U1","team":"T1","name":"ann2","updated":2}}}`)
	if u, ok := st.User("U1"); !ok || u.Name != "ann2" {
		t.Fatalf("a whole user_change after the cut one: %+v %v", u, ok)
	}
}
