package client

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzFrame feeds arbitrary server frames through what the read loop does with them: the
// envelope, then an event's decode and its merge into a Store. Nothing may panic. An event frame
// whose envelope reads always gives an event, in its place (Seq) with its Raw: one whose body
// decodes has a type; one whose body does not carries nothing but its type, Raw and
// annotations. Annotations only ever hold objects under their own IDs, and so does the Store.
func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"event","seq":3,"event":{"type":"message","channel":"C1","user":"U1","ts":"1.2","text":"hi","mentions":["U2"]},"annotations":{"users":{"U1":{"id":"U1","updated":3}}}}`,
		`{"type":"event","seq":4,"event":{"type":"user_change","team":"T1","user":{"id":"U1","name":"a","updated":9}}}`,
		`{"type":"event","seq":5,"event":{"type":"team_change","team":{"id":"T1","name":"x"}}}`,
		`{"type":"event","seq":6,"event":{"type":"channel_created","channel":{"id":"C9","name":"new"}}}`,
		`{"type":"event","seq":7,"event":{"type":"channel_deleted","channel":"C9"}}`,
		`{"type":"event","seq":8,"event":{"type":"message","user":{"id":"U1"}},"annotations":{"users":{"U2":{"id":"U3"}}}}`,
		`{"type":"event","seq":9,"event":{"type":"message","user":{"id":7},"text":"x"},"annotations":{"users":{"U1":{"id":"U1"},"U2":null,"U3":5},"channels":{"C1":"x"}}}`,
		`{"type":"event","seq":10,"event":{"type":"message","mentions":"U1"},"annotations":{"users":7,"channels":{"C1":{"id":"C1"}}}}`,
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
		if ev == nil {
			t.Fatalf("no event from %q (error %v)", data, err)
		}
		if ev.Seq != fr.Seq || !bytes.Equal(ev.Raw, fr.Event) {
			t.Fatalf("event seq %d raw %q from frame seq %d event %q", ev.Seq, ev.Raw, fr.Seq, fr.Event)
		}
		if err == nil && ev.Type == "" {
			t.Fatalf("event without a type decoded from %q", data)
		}
		if err != nil && (ev.User != nil || ev.Team != nil || ev.Channel != nil || ev.UserID != "" ||
			ev.ChannelID != "" || ev.TS != "" || ev.Text != "" || ev.ClientMsgID != "" || ev.Mentions != nil) {
			t.Fatalf("unreadable event (%v) handed over with fields: %+v", err, ev)
		}
		for id, u := range ev.Annotations.Users {
			if u == nil || u.ID != id {
				t.Fatalf("annotation users[%q] = %+v kept", id, u)
			}
		}
		for id, ch := range ev.Annotations.Channels {
			if ch == nil || ch.ID != id {
				t.Fatalf("annotation channels[%q] = %+v kept", id, ch)
			}
		}
		st := newStore()
		st.apply(ev)
		st.Renderable(ev)
		st.Missing(ev)
		for id, u := range ev.Annotations.Users {
			if got, ok := st.User(id); !ok || got.ID != id {
				t.Fatalf("Store holds %+v, %v under %q (annotation %+v)", got, ok, id, u)
			}
		}
	})
}
