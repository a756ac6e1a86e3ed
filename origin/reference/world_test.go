package reference

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // time zones are checked against the IANA database, whatever the host has
)

func refNewServer(t testing.TB, w *World) *Server {
	t.Helper()
	s, err := NewServer(ServerConfig{World: w})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWorldDeterministic(t *testing.T) {
	a := refNewServer(t, refWorld(t, 42, refSize))
	b := refNewServer(t, refWorld(t, 42, refSize))
	c := refNewServer(t, refWorld(t, 43, refSize))
	for _, team := range a.TeamIDs() {
		if !slices.Equal(a.Users(team), b.Users(team)) {
			t.Fatalf("team %s: same seed, different users", team)
		}
		if !slices.Equal(a.Channels(team), b.Channels(team)) {
			t.Fatalf("team %s: same seed, different channels", team)
		}
		if !slices.Equal(a.Memberships(team), b.Memberships(team)) {
			t.Fatalf("team %s: same seed, different memberships", team)
		}
		ta, _ := a.Team(team)
		tb, _ := b.Team(team)
		if ta != tb {
			t.Fatalf("team %s: same seed, %+v != %+v", team, ta, tb)
		}
		if slices.Equal(a.Users(team), c.Users(team)) || slices.Equal(a.Memberships(team), c.Memberships(team)) {
			t.Fatalf("team %s: seeds 42 and 43 give the same users or memberships", team)
		}
	}
}

func TestSizes(t *testing.T) {
	want := map[string]Size{
		"tiny":  {Name: "tiny", Teams: 3, Users: 20, Channels: 8, ChannelsPerUser: 4},
		"small": {Name: "small", Teams: 100, Users: 200, Channels: 30, ChannelsPerUser: 6},
		"1.5k":  {Name: "1.5k", Teams: 1, Users: 1_500, Channels: 150, ChannelsPerUser: 10},
		"32k":   {Name: "32k", Teams: 1, Users: 32_000, Channels: 3_200, ChannelsPerUser: 20},
		"giant": {Name: "giant", Teams: 1, Users: 366_000, Channels: 36_000, ChannelsPerUser: 14},
	}
	for name, w := range want {
		got, err := SizeByName(name)
		if err != nil || got != w {
			t.Errorf("SizeByName(%q) = %+v, %v; want %+v", name, got, err, w)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := SizeByName("huge")
	if err == nil || !strings.Contains(err.Error(), "tiny, small, 1.5k, 32k, giant") {
		t.Fatalf("unknown size: error %v should list the names", err)
	}
	for _, bad := range []Size{
		{Teams: 0, Users: 1, Channels: 2, ChannelsPerUser: 1},
		{Teams: 1, Users: 0, Channels: 2, ChannelsPerUser: 1},
		{Teams: 1, Users: 1, Channels: 1, ChannelsPerUser: 1},
		{Teams: 1, Users: 1, Channels: 2, ChannelsPerUser: 0.5},
		{Teams: 1, Users: 1, Channels: 2, ChannelsPerUser: 3},
		{Teams: maxTeams + 1, Users: 1, Channels: 2, ChannelsPerUser: 1},
	} {
		if _, err := NewWorld(1, bad); !errors.Is(err, ErrBadSize) {
			t.Errorf("NewWorld(%+v): %v, want ErrBadSize", bad, err)
		}
	}
	// Every user in every channel is a legal extreme.
	s := refNewServer(t, refWorld(t, 1, Size{Teams: 1, Users: 10, Channels: 4, ChannelsPerUser: 4}))
	if n := len(s.Memberships(s.TeamIDs()[0])); n != 40 {
		t.Fatalf("all-channels world: %d memberships, want 40", n)
	}
}

func TestIDRoundTrip(t *testing.T) {
	for _, c := range [][2]int{{0, 0}, {1, 1}, {35, 36}, {maxTeams - 1, maxObjects - 1}, {123, 366_000}} {
		team, idx := c[0], c[1]
		for _, kind := range []byte{'U', 'C'} {
			id := string(appendObjectID(nil, kind, team, idx))
			gt, gi, ok := parseObjectID(kind, id)
			if !ok || gt != team || gi != idx || len(id) != idLen {
				t.Errorf("%c(%d, %d) = %q → %d, %d, %v", kind, team, idx, id, gt, gi, ok)
			}
		}
		if got, ok := parseTeamID(teamID(team)); !ok || got != team {
			t.Errorf("team %d: %q → %d, %v", team, teamID(team), got, ok)
		}
	}
	if userID(0, 35) >= userID(0, 36) || channelID(1, 0) <= channelID(0, maxObjects-1) {
		t.Error("ID order is not index order")
	}
	w := refWorld(t, 1, refSize)
	for _, id := range []string{"", "U", "u00000001", "U0000000!", "U000000001", "C00000001", "U00200000", "U00000" + "4A0", "T00000001"} {
		if _, ok := w.User(id); ok {
			t.Errorf("User(%q) found", id)
		}
	}
	for _, id := range []string{"c00000001", "C0000000Z", "C00200000", "U00000001"} {
		if _, ok := w.Channel(id); ok {
			t.Errorf("Channel(%q) found", id)
		}
	}
	for _, id := range []string{"T00000002", "t00000000", "T0000000", "U00000000"} {
		if _, ok := w.Team(id); ok {
			t.Errorf("Team(%q) found", id)
		}
	}
	u, ok := w.User("U0010000A")
	if !ok || u.ID != "U0010000A" || u.Team != "T00000001" {
		t.Fatalf("User(U0010000A) = %+v, %v", u, ok)
	}
}

func TestNameLists(t *testing.T) {
	// Every (given, family) pair gives a distinct handle: what keeps handles unique per round.
	seen := map[string]bool{}
	for p := range totalPairs {
		_, g, f := personName(p)
		h := g.fold + "." + f.fold
		if seen[h] || !regexp.MustCompile(`^[a-z]+\.[a-z]+$`).MatchString(h) {
			t.Fatalf("pair %d: handle %q repeated or malformed", p, h)
		}
		seen[h] = true
	}
	names := map[string]bool{}
	for p := range channelNameCount {
		n, purpose := channelName(p)
		if names[n] || checkChannelName(n) != nil || regexp.MustCompile(`-[0-9]+$`).MatchString(n) || purpose == "" {
			t.Fatalf("channel name %d: %q repeated, invalid or ending in -<digits>", p, n)
		}
		names[n] = true
	}
	for in, want := range map[string]string{"José Núñez": "josenunez", "Łukasz": "lukasz", "Søren": "soren",
		"Ó Súilleabháin": "osuilleabhain", "O'Brien": "obrien", "Weiß": "weiss", "Yılmaz": "yilmaz",
		"İlker": "ilker", "Nguyễn": "nguyen", "Đặng": "dang", "Min-jun": "minjun", "Zoë": "zoe"} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHandlesAndChannelNamesUniquePerTeam(t *testing.T) {
	// Enough users for three rounds of name pairs and of bot names, enough channels for three
	// rounds of channel names.
	size := Size{Teams: 2, Users: 2*totalPairs + 500, Channels: 2*channelNameCount + 100, ChannelsPerUser: 3}
	s := refNewServer(t, refWorld(t, 5, size))
	for _, team := range s.TeamIDs() {
		handles := map[string]string{}
		numbered := 0
		for _, u := range s.Users(team) {
			if prev, dup := handles[u.Name]; dup {
				t.Fatalf("team %s: handle %q of %s and %s", team, u.Name, prev, u.ID)
			}
			handles[u.Name] = u.ID
			if strings.ContainsAny(u.Name[len(u.Name)-1:], "0123456789") {
				numbered++
			}
		}
		if numbered == 0 {
			t.Fatalf("team %s: no numbered handle among %d users", team, size.Users)
		}
		names := map[string]string{}
		for _, c := range s.Channels(team) {
			if prev, dup := names[c.Name]; dup {
				t.Fatalf("team %s: channel name %q of %s and %s", team, c.Name, prev, c.ID)
			}
			names[c.Name] = c.ID
		}
	}
}

func TestContentRealistic(t *testing.T) {
	size, _ := SizeByName("small")
	s := refNewServer(t, refWorld(t, 3, size))
	var users, bots, deleted, accented, display int
	var channels, private, archived, topics int
	for _, team := range s.TeamIDs() {
		tm, _ := s.Team(team)
		if tm.Name == "" || !regexp.MustCompile(`^[a-z]+[0-9]*$`).MatchString(tm.Domain) {
			t.Fatalf("team %+v", tm)
		}
		for i, u := range s.Users(team) {
			users++
			if err := u.Validate(team); err != nil {
				t.Fatal(err)
			}
			if i == 0 && (u.IsBot || u.Deleted) {
				t.Fatalf("owner %+v must be an active person", u)
			}
			if _, err := time.LoadLocation(u.TZ); err != nil || u.RealName == "" || u.AvatarURL == "" {
				t.Fatalf("user %+v: %v", u, err)
			}
			if u.IsBot {
				bots++
			}
			if u.Deleted {
				deleted++
			}
			if u.DisplayName != "" {
				display++
			}
			if strings.ContainsFunc(u.RealName, func(r rune) bool { return r > 0x7f }) {
				accented++
			}
		}
		chans := s.Channels(team)
		if chans[0].Name != "general" || chans[1].Name != "random" {
			t.Fatalf("first channels %q, %q", chans[0].Name, chans[1].Name)
		}
		for i, c := range chans {
			channels++
			if err := c.Validate(team); err != nil {
				t.Fatal(err)
			}
			if _, err := time.Parse(time.RFC3339, c.Created); err != nil {
				t.Fatal(err)
			}
			if u, ok := s.User(team, c.Creator); !ok || c.Purpose == "" {
				t.Fatalf("channel %+v: creator %+v", c, u)
			}
			if c.IsPrivate {
				if i <= popularRanks {
					t.Fatalf("channel %d (%s) is popular and private", i, c.Name)
				}
				private++
			}
			if c.IsArchived {
				archived++
			}
			if c.Topic != "" {
				topics++
			}
		}
	}
	share := func(n, of int) float64 { return float64(n) / float64(of) }
	for _, c := range []struct {
		what    string
		got     float64
		lo, hi  float64
		n, base int
	}{
		{"bots", share(bots, users), 0.01, 0.02, bots, users},
		{"deleted users", share(deleted, users), 0.02, 0.04, deleted, users},
		{"accented real names", share(accented, users), 0.3, 0.8, accented, users},
		{"display names", share(display, users), 0.5, 0.85, display, users},
		{"private channels", share(private, channels), 0.02, 0.08, private, channels}, // 8 of 30 can be
		{"archived channels", share(archived, channels), 0.03, 0.07, archived, channels},
		{"channel topics", share(topics, channels), 0.4, 0.8, topics, channels},
	} {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("%s: %d of %d = %.3f, want in [%.2f, %.2f]", c.what, c.n, c.base, c.got, c.lo, c.hi)
		}
	}
}

func TestMemberships(t *testing.T) {
	for _, size := range []Size{
		{Name: "skewed", Teams: 1, Users: 5000, Channels: 400, ChannelsPerUser: 8},
		refSize,
		{Name: "tiny x20", Teams: 60, Users: 20, Channels: 8, ChannelsPerUser: 4},
	} {
		t.Run(size.Name, func(t *testing.T) {
			s := refNewServer(t, refWorld(t, 11, size))
			total := 0
			for _, team := range s.TeamIDs() {
				counts := map[string]int{}
				inGeneral := 0
				for _, m := range s.Memberships(team) {
					counts[m.Channel]++
					if m.Channel == channelID(s.team(team).idx, 0) {
						inGeneral++
					}
					if err := m.Validate(); err != nil || m.Updated != 1 {
						t.Fatalf("%+v: %v", m, err)
					}
					total++
				}
				if inGeneral != size.Users {
					t.Fatalf("team %s: %d of %d users in #general", team, inGeneral, size.Users)
				}
				var members []int
				for _, c := range s.Channels(team) {
					if c.MemberCount != counts[c.ID] {
						t.Fatalf("channel %s: member_count %d, %d memberships", c.ID, c.MemberCount, counts[c.ID])
					}
					if c.Name != "general" {
						members = append(members, c.MemberCount)
					}
				}
				if size.Users >= 1000 {
					slices.Sort(members)
					top, median := members[len(members)-1], members[len(members)/2]
					if top < 10*median {
						t.Fatalf("team %s: top channel %d members, median %d: not skewed", team, top, median)
					}
				}
			}
			mean := float64(total) / float64(size.Teams*size.Users)
			if mean < 0.93*size.ChannelsPerUser || mean > 1.07*size.ChannelsPerUser {
				t.Fatalf("mean %.2f channels per user, want ~%v", mean, size.ChannelsPerUser)
			}
		})
	}
}

// TestWorldChannelsOf: the world's walk of a user's memberships, without a server, is what a
// fresh server serves, user for user; an ID the world does not have is nil.
func TestWorldChannelsOf(t *testing.T) {
	w := refWorld(t, 4, Size{Name: "tiny x3", Teams: 3, Users: 40, Channels: 12, ChannelsPerUser: 4})
	s := refNewServer(t, w)
	n := 0
	for _, team := range w.TeamIDs() {
		for _, u := range s.Users(team) {
			got, want := w.ChannelsOf(team, u.ID), s.ChannelsOf(team, u.ID)
			if !slices.Equal(got, want) || len(got) == 0 {
				t.Fatalf("%s %s: world %v, server %v", team, u.ID, got, want)
			}
			n += len(got)
		}
	}
	if n == 0 {
		t.Fatal("no memberships")
	}
	team := w.TeamIDs()[1]
	for _, bad := range []string{userID(0, 3), userID(1, 40), "U", channelID(1, 2)} {
		if ids := w.ChannelsOf(team, bad); ids != nil {
			t.Errorf("ChannelsOf(%s, %s) = %v, want nil", team, bad, ids)
		}
	}
}
