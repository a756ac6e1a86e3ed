package index_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// Each event type updates the index in place, and the next query sees it.
func TestIndexFollowsEvents(t *testing.T) {
	g := newGolden(t, index.Config{})
	as := func(caller, text string) []string {
		return g.labels(t, index.Query{Text: text, Caller: caller})
	}
	expect := func(what string, got []string, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	user := func(id string) origin.User {
		u, ok := g.st.User(id)
		if !ok {
			t.Fatalf("no user %s", id)
		}
		u.Updated++
		return u
	}
	channel := func(id string) origin.Channel {
		_, c, _, ok := g.st.ChannelAt(id)
		if !ok {
			t.Fatalf("no channel %s", id)
		}
		c.Updated++
		return c
	}

	// user_change: a rename moves the user from the old words to the new ones.
	u := user("U06")
	u.Name, u.RealName, u.DisplayName = "grace.hopper", "Mark Hopper", "Grace"
	g.feed(t, &origin.Event{Type: origin.EventUserChange, User: &u})
	expect("renamed user by new display name", as("U01", "grace"), "Grace (Mark Hopper)")
	expect("renamed user by old name", as("U01", "twain"))

	// user_change: deactivation hides the user, include_inactive shows them.
	u = user("U07")
	u.Deleted = true
	g.feed(t, &origin.Event{Type: origin.EventUserChange, User: &u})
	expect("deactivated user", as("U01", "marie"))
	expect("deactivated user, include_inactive",
		g.labels(t, index.Query{Text: "marie", Caller: "U01", IncludeInactive: true}), "Marie Curie")

	// channel_created: public for everyone; private for its members (the creator) only.
	g.feed(t, &origin.Event{Type: origin.EventChannelCreated, Channel: &origin.Channel{ID: "C0D",
		Team: goldenTeam, Name: "launch-pad", Creator: "U03", Updated: 100}})
	expect("new public channel", as("U01", "launch"), "#launch-pad")
	g.feed(t, &origin.Event{Type: origin.EventChannelCreated, Channel: &origin.Channel{ID: "C0E",
		Team: goldenTeam, Name: "launch-secrets", Creator: "U03", IsPrivate: true, Updated: 100}})
	expect("new private channel, non-member", as("U01", "launch"), "#launch-pad")
	expect("new private channel, creator", as("U03", "launch"), "#launch-pad", "#launch-secrets")

	// channel_change: a rename, then an archive.
	c := channel("C0A")
	c.Name = "infosec"
	g.feed(t, &origin.Event{Type: origin.EventChannelChange, Channel: &c})
	expect("renamed channel, new name", as("U01", "infos"), "#infosec")
	expect("renamed channel, old name", as("U01", "security"))
	c = channel("C0B")
	c.IsArchived = true
	g.feed(t, &origin.Event{Type: origin.EventChannelChange, Channel: &c})
	expect("archived channel", g.labels(t, index.Query{Text: "mark", Caller: "U01", Channels: true}))

	// channel_deleted: gone, even with include_inactive.
	g.feed(t, &origin.Event{Type: origin.EventChannelDeleted, ChannelID: "C04", Updated: 200})
	expect("deleted channel", g.labels(t, index.Query{Text: "dev", Caller: "U01", Channels: true, IncludeInactive: true}),
		"#frontend-dev", "#devops")

	// member_joined / member_left: a private channel appears and disappears for the member,
	// and a user becomes close (shares a small channel) and stops being close.
	g.feed(t, &origin.Event{Type: origin.EventMemberJoined, ChannelID: "C07", UserID: "U01", Updated: 300})
	expect("joined private channel", as("U01", "secret"), "#secret-plans")
	expect("a new channel-mate ranks first", as("U01", "mar"), "María García", "Grace (Mark Hopper)", "Marcus Aurelius")
	g.feed(t, &origin.Event{Type: origin.EventMemberLeft, ChannelID: "C07", UserID: "U01", Updated: 301})
	expect("left private channel", as("U01", "secret"))

	// message: recency reorders among equals.
	expect("before the message", as("U01", "john"), "John Smith", "Sarah Johnson", "Johnny Appleseed")
	g.feed(t, &origin.Event{Type: origin.EventMessage, UserID: "U04", ChannelID: "C06", Text: "hello"})
	expect("after Johnny spoke", as("U01", "john"), "John Smith", "Johnny Appleseed", "Sarah Johnson")

	// New words reach the typo fallback too.
	testkit.EventuallyWithin(t, time.Minute, g.x.FuzzyReady, "the typo fallback")
	u = user("U10")
	u.RealName = "Zanzibar Quux"
	g.feed(t, &origin.Event{Type: origin.EventUserChange, User: &u})
	// bleve indexes new words on its own goroutine: poll.
	var got []string
	testkit.EventuallyOr(t, time.Minute, func() bool {
		got = as("U01", "zanzibra")
		return slices.Equal(got, []string{"Zanzibar Quux"})
	}, "a typo of a new word to find it", func() { t.Logf("typo of a new word: got %q", got) })
}

// Events that arrive while the index is being built are applied after the build: the index
// ends consistent with its store whichever way the race went.
func TestIndexEventsDuringBuild(t *testing.T) {
	for range 20 {
		g := newGolden(t, index.Config{NoFuzzy: true})
		x := index.New(g.st, index.Config{NoFuzzy: true})
		u, _ := g.st.User("U03")
		u.RealName, u.Updated = "Johann Sebastian", u.Updated+1
		g.seq++
		ev := &origin.Event{Type: origin.EventUserChange, Team: goldenTeam, Seq: g.seq, User: &u}
		ch, _ := g.st.ApplyEvent(ev)
		x.Apply(ev, ch) // probably before the build read the store; maybe after
		waitReady(t, x)
		res, err := x.Search(context.Background(), index.Query{Text: "sebast", Caller: "U01"})
		x.Close()
		if err != nil || len(res) != 1 || res[0].ID != "U03" {
			t.Fatalf("after a rename during the build: %+v, %v", res, err)
		}
	}
}

// Nothing of another team is ever visible: two teams with the same names, each index answers
// only with its own objects.
func TestIndexTeamIsolation(t *testing.T) {
	srv := worldServer(t, "small")
	teams := srv.TeamIDs()[:2]
	var xs []*index.Index
	for _, team := range teams {
		x := index.New(storeOf(t, srv, team), index.Config{NoFuzzy: true})
		t.Cleanup(x.Close)
		waitReady(t, x)
		xs = append(xs, x)
	}
	for i, team := range teams {
		own := map[string]bool{}
		for _, u := range srv.Users(team) {
			own[u.ID] = true
		}
		for _, c := range srv.Channels(team) {
			own[c.ID] = true
		}
		caller := srv.Users(team)[0].ID
		// Query every name of the other team.
		for _, u := range srv.Users(teams[1-i])[:50] {
			res, err := xs[i].Search(context.Background(), index.Query{Text: u.RealName, Caller: caller, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !own[r.ID] || !strings.HasPrefix(r.ID, "U") && !strings.HasPrefix(r.ID, "C") {
					t.Fatalf("team %s's index answered %q with %s", team, u.RealName, r.ID)
				}
			}
		}
	}
}

func TestSearchAfterClose(t *testing.T) {
	g := newGolden(t, index.Config{NoFuzzy: true})
	g.x.Close()
	if _, err := g.x.Search(context.Background(), index.Query{Text: "a"}); err != index.ErrClosed {
		t.Fatalf("Search after Close: %v, want ErrClosed", err)
	}
	g.x.Close() // idempotent
}
