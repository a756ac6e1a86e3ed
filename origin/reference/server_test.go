package reference

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weft-edge/weft/origin"
)

func TestPagingWalksEverythingOnce(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team := s.TeamIDs()[1]
	// Some changes first, so the pages merge the overlay: a created channel, a deleted one,
	// joins and leaves.
	ctx := t.Context()
	u0, u5 := userID(1, 0), userID(1, 5)
	refMust(t)(s.CreateChannel(ctx, team, "proj-paging", u5, false))
	refMust(t)(s.DeleteChannel(ctx, team, channelID(1, 3)))
	toggled := 0
	for _, c := range s.Channels(team)[2:] {
		if c.IsArchived || toggled == 4 {
			continue
		}
		toggled++
		id := c.ID
		if slices.Contains(s.ChannelsOf(team, u0), id) {
			refMust(t)(s.LeaveChannel(ctx, team, id, u0))
		} else {
			refMust(t)(s.JoinChannel(ctx, team, id, u0))
		}
	}
	wantUsers, wantChans, wantMems := s.Users(team), s.Channels(team), s.Memberships(team)
	for _, limit := range []int{1, 3, 17, 1000} {
		if got := refWalkUsers(t, hs, team, limit); !slices.Equal(got, wantUsers) {
			t.Fatalf("limit %d: users differ from the accessor (%d vs %d)", limit, len(got), len(wantUsers))
		}
		if got := refWalkChannels(t, hs, team, limit); !slices.Equal(got, wantChans) {
			t.Fatalf("limit %d: channels differ (%d vs %d)", limit, len(got), len(wantChans))
		}
		if limit == 1 {
			continue // ~750 memberships one by one is slow under -race and shows nothing new
		}
		got := refWalkMemberships(t, hs, team, limit)
		if !slices.Equal(got, wantMems) {
			t.Fatalf("limit %d: memberships differ (%d vs %d)", limit, len(got), len(wantMems))
		}
		seen := map[origin.Membership]bool{}
		for i, m := range got {
			if seen[m] || i > 0 && (m.User < got[i-1].User || m.User == got[i-1].User && m.Channel <= got[i-1].Channel) {
				t.Fatalf("limit %d: row %d %+v repeated or out of (user, channel) order", limit, i, m)
			}
			seen[m] = true
			if m.Channel == channelID(1, 3) {
				t.Fatalf("membership of a deleted channel: %+v", m)
			}
		}
	}
}

func TestSnapshotEqualsPages(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team := s.TeamIDs()[0]
	refMust(t)(s.UpdateUser(t.Context(), team, userID(0, 3), func(u *origin.User) { u.Title = "Snapshot tester" }))
	refMust(t)(s.DeleteChannel(t.Context(), team, channelID(0, 2)))
	var snap struct {
		Team        origin.Team         `json:"team"`
		Seq         int64               `json:"seq"`
		Users       []origin.User       `json:"users"`
		Channels    []origin.Channel    `json:"channels"`
		Memberships []origin.Membership `json:"memberships"`
	}
	if err := json.Unmarshal(refSnapshotBytes(t, hs, team), &snap); err != nil {
		t.Fatal(err)
	}
	var info origin.TeamInfo
	refGetJSON(t, hs, "/origin/v1/teams/"+team, &info)
	if snap.Team != info.Team || snap.Seq != info.Seq || snap.Seq != 2 {
		t.Fatalf("snapshot team %+v seq %d, GET team %+v", snap.Team, snap.Seq, info)
	}
	if !slices.Equal(snap.Users, refWalkUsers(t, hs, team, 1000)) ||
		!slices.Equal(snap.Channels, refWalkChannels(t, hs, team, 1000)) ||
		!slices.Equal(snap.Memberships, refWalkMemberships(t, hs, team, 1000)) {
		t.Fatal("snapshot differs from the pages")
	}
	if len(snap.Channels) != refSize.Channels-1 || len(snap.Users) != refSize.Users {
		t.Fatalf("snapshot has %d users, %d channels", len(snap.Users), len(snap.Channels))
	}
}

func TestTeamEndpoint(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team := s.TeamIDs()[0]
	var info origin.TeamInfo
	refGetJSON(t, hs, "/origin/v1/teams/"+team, &info)
	if info.Seq != 0 || info.Team.Validate(team) != nil || info.Team.UserCount != refSize.Users ||
		info.Team.ChannelCount != refSize.Channels {
		t.Fatalf("fresh team: %+v", info)
	}
	refMust(t)(s.CreateChannel(t.Context(), team, "new-one", userID(0, 1), true))
	refGetJSON(t, hs, "/origin/v1/teams/"+team, &info)
	if info.Seq != 1 || info.Team.ChannelCount != refSize.Channels+1 {
		t.Fatalf("after one change: %+v", info)
	}
}

func TestAuth(t *testing.T) {
	s, hs := refServe(t, ServerConfig{Token: "s3cret"})
	team := s.TeamIDs()[0]
	for _, path := range []string{"/origin/v1/teams/" + team, "/origin/v1/teams/" + team + "/users", "/origin/admin/faults"} {
		refWantError(t, hs, "", path, http.StatusUnauthorized, "invalid_auth")
		refWantError(t, hs, "wrong", path, http.StatusUnauthorized, "invalid_auth")
		if status, body := refGet(t, hs, "s3cret", path); status != http.StatusOK {
			t.Fatalf("GET %s with the token: %d %s", path, status, body)
		}
	}
}

func TestNotFound(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team := s.TeamIDs()[0]
	base := "/origin/v1/teams/" + team
	ctx := t.Context()
	refMust(t)(s.DeleteChannel(ctx, team, channelID(0, 4)))
	refMust(t)(s.UpdateUser(ctx, team, userID(0, 2), func(u *origin.User) { u.Deleted = true }))
	for _, path := range []string{"/origin/v1/teams/T00000002", "/origin/v1/teams/nope/users",
		"/origin/v1/teams/t00000000/channels", "/origin/v1/teams/U00000000/memberships",
		"/origin/v1/teams/T00000009/snapshot"} {
		refWantError(t, hs, "", path, http.StatusNotFound, "team_not_found")
	}
	for _, id := range []string{"U00100001", "U00000" + "4A0", "u00000001", "C00000001", "U0000000"} {
		refWantError(t, hs, "", base+"/users/"+id, http.StatusNotFound, "user_not_found")
	}
	for _, id := range []string{"C00100001", channelID(0, 4), "C000000ZZ", "U00000001"} {
		refWantError(t, hs, "", base+"/channels/"+id, http.StatusNotFound, "channel_not_found")
	}
	var u origin.User
	refGetJSON(t, hs, base+"/users/"+userID(0, 2), &u)
	if !u.Deleted || u.Updated != 3 {
		t.Fatalf("deleted user: %+v, want present with deleted and updated 3", u)
	}
	var c origin.Channel
	refGetJSON(t, hs, base+"/channels/"+channelID(0, 1), &c)
	if c.Name != "random" || c.Validate(team) != nil {
		t.Fatalf("random: %+v", c)
	}
	if status, _ := refGet(t, hs, "", base+"/nothing"); status != http.StatusNotFound {
		t.Fatalf("unknown path: %d", status)
	}
}

func TestBadParams(t *testing.T) {
	s, hs := refServe(t, ServerConfig{MaxPageLimit: 40})
	base := "/origin/v1/teams/" + s.TeamIDs()[0]
	usersCursor := encodeCursor(cursorUsers, 3)
	for _, q := range []string{"cursor=%21%21", "cursor=" + encodeCursor(cursorMemberships, 1, 2),
		"cursor=" + strings.Repeat("A", 100), "cursor=" + encodeCursor(cursorChannels, 1)} {
		refWantError(t, hs, "", base+"/users?"+q, http.StatusBadRequest, "invalid_cursor")
	}
	refWantError(t, hs, "", base+"/memberships?cursor="+usersCursor, http.StatusBadRequest, "invalid_cursor")
	for _, l := range []string{"0", "-1", "abc", "1.5", "99999999999999999999"} {
		refWantError(t, hs, "", base+"/channels?limit="+l, http.StatusBadRequest, "invalid_limit")
	}
	var page refPage
	refGetJSON(t, hs, base+"/users?limit=1000", &page)
	if len(page.Users) != 40 {
		t.Fatalf("limit over MaxPageLimit: %d users, want 40", len(page.Users))
	}
	refGetJSON(t, hs, base+"/users", &page)
	if len(page.Users) != 40 {
		t.Fatalf("default limit under MaxPageLimit 40: %d users", len(page.Users))
	}
	refGetJSON(t, hs, base+"/users?cursor="+usersCursor+"&limit=2", &page)
	if len(page.Users) != 2 || page.Users[0].ID != userID(0, 3) {
		t.Fatalf("page from cursor 3: %+v", page.Users)
	}
	// A cursor past the end is a valid, empty last page.
	refGetJSON(t, hs, base+"/users?cursor="+encodeCursor(cursorUsers, 1e6), &page)
	if len(page.Users) != 0 || *page.NextCursor != "" {
		t.Fatalf("cursor past the end: %+v", page)
	}
	if _, err := NewServer(ServerConfig{}); err == nil {
		t.Fatal("NewServer without a world: no error")
	}
	if _, err := NewServer(ServerConfig{World: s.World(), MaxPageLimit: -1}); err == nil {
		t.Fatal("NewServer with a negative MaxPageLimit: no error")
	}
}

// TestHandWrittenJSON checks the hand-appended pages against encoding/json.
func TestHandWrittenJSON(t *testing.T) {
	odd := "a\"b\\c\n\t\r\x00\x1f<>&\u2028é\xff\xfe😀"
	u := origin.User{ID: "U1", Team: "T1", Name: odd, RealName: "Zoë Dvořák", DisplayName: odd, Title: "",
		AvatarURL: "https://x/y?a=1&b=2", TZ: "Europe/Prague", IsBot: true, Deleted: true, Updated: 1 << 40}
	c := origin.Channel{ID: "C1", Team: "T1", Name: odd, Topic: "→", Purpose: odd, IsPrivate: true,
		IsArchived: true, Created: "2020-01-01T00:00:00Z", Creator: "U1", MemberCount: 12345, Updated: 7}
	tm := origin.Team{ID: "T1", Name: odd, Domain: "d", UserCount: 3, ChannelCount: 4, Updated: 9}
	for _, v := range []any{&u, &c, &tm} {
		var hand []byte
		switch v := v.(type) {
		case *origin.User:
			hand = appendUser(nil, v)
		case *origin.Channel:
			hand = appendChannel(nil, v)
		case *origin.Team:
			hand = appendTeam(nil, v)
		}
		std, _ := json.Marshal(v)
		refSameJSON(t, hand, std)
	}
	row := appendMembership(nil, 2, 77, memRow{ch: 5, member: true, updated: 99})
	std, _ := json.Marshal(origin.Membership{Channel: channelID(2, 5), User: userID(2, 77), Updated: 99})
	refSameJSON(t, row, std)
}

func refSameJSON(t *testing.T, hand, std []byte) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(hand, &a); err != nil {
		t.Fatalf("hand-written JSON %s: %v", hand, err)
	}
	_ = json.Unmarshal(std, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("hand-written %s\nencoding/json %s", hand, std)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "José", "\x00\x1f\"\\", "\xff", "a\u2028b", "😀\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var hand, std string
		if err := json.Unmarshal(appendString(nil, s), &hand); err != nil {
			t.Fatalf("appendString(%q) is not JSON: %v", s, err)
		}
		b, _ := json.Marshal(s)
		_ = json.Unmarshal(b, &std)
		if hand != std {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json to %q", s, hand, std)
		}
	})
}

// refMust fails the test when a change returns an error.
func refMust(t testing.TB) func(*origin.Event, error) *origin.Event {
	return func(ev *origin.Event, err error) *origin.Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
}
