package client

import (
	"encoding/json"
	"testing"
)

// FuzzFrame feeds arbitrary server frames through what the read loop does with them: the
// envelope, then an event's decode and its merge into a Store. Nothing may panic; an event that
// decodes must have a type and put only objects under their own IDs into the Store.
func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"event","seq":3,"event":{"type":"message","channel":"C1","user":"U1","ts":"1.2","text":"hi","mentions":["U2"]},"annotations":{"users":{"U1":{"id":"U1","updated":3}}}}`,
		`{"type":"event","seq":4,"event":{"type":"user_change","team":"T1","user":{"id":"U1","name":"a","updated":9}}}`,
		`{"type":"event","seq":5,"event":{"type":"team_change","team":{"id":"T1","name":"x"}}}`,
		`{"type":"event","seq":6,"event":{"type":"channel_created","channel":{"id":"C9","name":"new"}}}`,
		`{"type":"event","seq":7,"event":{"type":"channel_deleted","channel":"C9"}}`,
		`{"type":"event","seq":8,"event":{"type":"message","user":{"id":"U1"}},"annotations":{"users":{"U2":{"id":"U3"}}}}`,
		`{"type":"reply","id":1,"ok":false,"error":{"code":"rate_limited","retry_after_ms":5}}`,
		`{"type":"goodbye","reason":"draining","reconnect_after_ms":100}`,
		`{"type":"event","seq":1,"event":null}`,
		`[]`, `{"type":"event","event":{"type":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr frame
		if json.Unmarshal(data, &fr) != nil || fr.Type != "event" {
			return
		}
		ev, err := decodeEvent(fr.Seq, fr.Event, fr.Annotations)
		if err != nil {
			return
		}
		if ev.Type == "" {
			t.Fatalf("event without a type decoded from %q", data)
		}
		st := newStore()
		st.apply(ev)
		st.Renderable(ev)
		st.Missing(ev)
		for id, u := range ev.Annotations.Users {
			if got, ok := st.User(id); ok && got.ID != id {
				t.Fatalf("Store holds %q under %q (annotation %+v)", got.ID, id, u)
			}
		}
	})
}
