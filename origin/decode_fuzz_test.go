package origin

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodePage feeds arbitrary bytes to every page decoder. Whatever the bytes, a decoder
// either refuses them with ErrBadResponse or returns objects that all pass validation for the
// team asked; it never panics.
func FuzzDecodePage(f *testing.F) {
	f.Add(uint8(0), []byte(`{"users":[{"id":"U1","team":"T1","name":"a","updated":1}],"next_cursor":"x"}`))
	f.Add(uint8(1), []byte(`{"channels":[{"id":"C1","team":"T1","name":"general","updated":3,"member_count":2}],"next_cursor":""}`))
	f.Add(uint8(2), []byte(`{"memberships":[{"channel":"C1","user":"U1","updated":1}],"next_cursor":""}`))
	f.Add(uint8(3), []byte(`{"team":{"id":"T1","name":"Acme","domain":"acme","user_count":2,"channel_count":1,"updated":1},"seq":42}`))
	f.Add(uint8(0), []byte(`{"users":[{"id":"U1","team":"T2","updated":1}]}`))
	f.Add(uint8(0), []byte(`{"users":[{"id":"U1","team":"T1","updated":-5}]}`))
	f.Add(uint8(2), []byte(`{"memberships":[{"channel":"","user":"U1","updated":1}]}`))
	f.Add(uint8(1), []byte(`{"channels":null,"next_cursor":7}`))
	f.Add(uint8(3), []byte(`[`))
	f.Add(uint8(3), []byte(`{"team":{"id":"T1","name":"A","updated":1},"seq":1,"listings":{"stream":true,"partitions":{"users":2,"channels":1,"memberships":65}}}`))
	f.Add(uint8(3), []byte(`{"team":{"id":"T1","name":"A","updated":1},"seq":1,"listings":{"partitions":{"memberships":-1}}}`))
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		const team, limit = "T1", 3
		var err error
		switch kind % 4 {
		case 0:
			var p *UsersPage
			if p, err = DecodeUsersPage(team, data, limit); err == nil {
				if len(p.Users) > limit {
					t.Fatalf("page of %d rows passed a limit of %d", len(p.Users), limit)
				}
				for i := range p.Users {
					if verr := p.Users[i].Validate(team); verr != nil || p.Users[i].ID == "" {
						t.Fatalf("accepted invalid user %+v: %v", p.Users[i], verr)
					}
				}
				roundTrip(t, p, func(b []byte) (any, error) { return DecodeUsersPage(team, b, limit) })
			}
		case 1:
			var p *ChannelsPage
			if p, err = DecodeChannelsPage(team, data, limit); err == nil {
				for i := range p.Channels {
					if verr := p.Channels[i].Validate(team); verr != nil {
						t.Fatalf("accepted invalid channel %+v: %v", p.Channels[i], verr)
					}
				}
				roundTrip(t, p, func(b []byte) (any, error) { return DecodeChannelsPage(team, b, limit) })
			}
		case 2:
			var p *MembershipsPage
			if p, err = DecodeMembershipsPage(team, data, limit); err == nil {
				for i := range p.Memberships {
					if verr := p.Memberships[i].Validate(); verr != nil {
						t.Fatalf("accepted invalid membership %+v: %v", p.Memberships[i], verr)
					}
				}
				roundTrip(t, p, func(b []byte) (any, error) { return DecodeMembershipsPage(team, b, limit) })
			}
		case 3:
			var ti *TeamInfo
			if ti, err = DecodeTeamInfo(team, data); err == nil {
				if ti.Team.ID != team || ti.Seq < 0 || ti.Team.Updated <= 0 {
					t.Fatalf("accepted invalid team info %+v", ti)
				}
				if l := ti.Listings; l != nil {
					for _, n := range []int{l.Partitions.Users, l.Partitions.Channels, l.Partitions.Memberships} {
						if n < 0 || n > MaxPartitions {
							t.Fatalf("accepted %d partitions: %+v", n, l)
						}
					}
				}
			}
		}
		if err != nil && !errors.Is(err, ErrBadResponse) {
			t.Fatalf("error does not wrap ErrBadResponse: %v", err)
		}
	})
}

// roundTrip checks that what a decoder accepted encodes to bytes it accepts again.
func roundTrip(t *testing.T, v any, decode func([]byte) (any, error)) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if _, err := decode(b); err != nil {
		t.Fatalf("re-decode of accepted page failed: %v\n%s", err, b)
	}
}

// FuzzDecodeEvent: any bytes on a team's subject either decode to a valid event of that team
// or fail with ErrBadEvent / ErrBadObject.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"team":"T1","seq":3,"type":"message","channel":"C1","user":"U1","ts":"1700000000.000100","text":"hi <@U2>","mentions":["U2"]}`))
	f.Add([]byte(`{"team":{"id":"T1","name":"Acme","updated":4},"seq":4,"type":"team_change"}`))
	f.Add([]byte(`{"team":"T1","seq":5,"type":"user_change","user":{"id":"U1","team":"T1","updated":6}}`))
	f.Add([]byte(`{"team":"T1","seq":6,"type":"channel_created","channel":{"id":"C9","team":"T1","name":"x","updated":7}}`))
	f.Add([]byte(`{"team":"T1","seq":7,"type":"member_left","channel":"C9","user":"U1","updated":8}`))
	f.Add([]byte(`{"team":"T2","seq":1,"type":"message"}`))
	f.Add([]byte(`{"team":"T1","seq":-1,"type":"channel_deleted","channel":"C1"}`))
	f.Add([]byte(`{"team":"T1","seq":1,"type":"user_change","user":"U1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent("T1", data)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) && !errors.Is(err, ErrBadObject) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if ev.Team != "T1" || ev.Seq <= 0 {
			t.Fatalf("accepted %+v", ev)
		}
		if ev.Size != len(data) {
			t.Fatalf("size %d, decoded from %d bytes", ev.Size, len(data))
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeEvent("T1", b)
		if err != nil {
			t.Fatalf("re-decode of accepted event failed: %v\n%s", err, b)
		}
		if again.Seq != ev.Seq || again.Type != ev.Type || again.ChannelScope() != ev.ChannelScope() {
			t.Fatalf("round trip changed the event: %+v → %+v", ev, again)
		}
	})
}

// FuzzMembershipsFastMatchesJSON: whatever the fast memberships decoder accepts, encoding/json
// accepts too and reads the same.
func FuzzMembershipsFastMatchesJSON(f *testing.F) {
	f.Add([]byte(`{"memberships":[{"channel":"C1","user":"U1","updated":1},{"user":"U2","channel":"C1","updated":12}],"next_cursor":"abc"}`))
	f.Add([]byte(` { "memberships" : [ ] , "next_cursor" : "" } `))
	f.Add([]byte(`{"memberships":null}`))
	f.Add([]byte(`{"memberships":[{"channel":"C\u0031","user":"U1","updated":1}]}`))
	f.Add([]byte(`{"memberships":[{"channel":"C1","user":"U1","updated":1.5}]}`))
	f.Add([]byte(`{"memberships":[{"channel":"C1","user":"U1","updated":-0}],"x":1}`))
	f.Add([]byte(`{"memberships":[{}],"next_cursor":"a","next_cursor":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeMembershipsFast(data)
		if !ok {
			return
		}
		var slow MembershipsPage
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, data)
		}
		if fast.NextCursor != slow.NextCursor || len(fast.Memberships) != len(slow.Memberships) ||
			(fast.Memberships == nil) != (slow.Memberships == nil) {
			t.Fatalf("fast %+v\nslow %+v", fast, slow)
		}
		for i := range fast.Memberships {
			if fast.Memberships[i] != slow.Memberships[i] {
				t.Fatalf("row %d: fast %+v slow %+v", i, fast.Memberships[i], slow.Memberships[i])
			}
		}
	})
}
