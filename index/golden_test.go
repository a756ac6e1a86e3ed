package index_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// The golden world: a small team built by hand so that every ranking rule has a case that
// shows it. The caller of most queries is Alex Morgan (U01).
//
//	#design-team  Alex, Mark Twain, Zoë, Nguyễn Văn An      (small: members are close to Alex)
//	#dev          Alex, John Smith, Devon Lee
//	#salary-review (private) Alex, Jane Smith
//	#old-project  (archived) Alex, José Núñez
//	#secret-plans (private) Marie Curie, María García         (Alex is not in it)
//	#general      everyone; #random 12 people                (too big to make anyone close)
//
// Recent activity, oldest first: Sarah Johnson in #random, María García in #marketing, Marie
// Curie in #secret-plans.
const goldenTeam = "T1"

type goldenUser struct {
	id, name, real, display string
	deleted, bot            bool
}

var goldenUsers = []goldenUser{
	{"U01", "alex.morgan", "Alex Morgan", "Alex", false, false},
	{"U02", "jose.nunez", "José Núñez", "José", false, false},
	{"U03", "john.smith", "John Smith", "John", false, false},
	{"U04", "johnny.appleseed", "Johnny Appleseed", "Johnny", false, false},
	{"U05", "sarah.johnson", "Sarah Johnson", "", false, false},
	{"U06", "mark.twain", "Mark Twain", "Mark", false, false},
	{"U07", "marie.curie", "Marie Curie", "Marie", false, false},
	{"U08", "maria.garcia", "María García", "María", false, false},
	{"U09", "zoe.dvorak", "Zoë Dvořák", "Zoë", false, false},
	{"U0A", "lukasz.wojcik", "Łukasz Wójcik", "Łukasz", false, false},
	{"U0B", "bob.gone", "Bob Gone", "", true, false},
	{"U0C", "ace.ventura", "Alan Ventura", "Ace", false, false},
	{"U0D", "deploy-bot", "Deploy Bot", "", false, true},
	{"U0E", "an.nguyen", "Nguyễn Văn An", "An", false, false},
	{"U0F", "jane.smith", "Jane Smith", "Jane", false, false},
	{"U10", "marcus.aurelius", "Marcus Aurelius", "", false, false},
	{"U11", "devon.lee", "Devon Lee", "Dev", false, false},
	{"U12", "genevieve.roy", "Geneviève Roy", "", false, false},
	{"U13", "soren.ostergaard", "Søren Østergaard", "Søren", false, false},
	{"U14", "ana.silva", "Ana Silva", "Ana S.", false, false},
}

type goldenChannel struct {
	id, name          string
	private, archived bool
	members           []string
}

var goldenChannels = []goldenChannel{
	{"C01", "general", false, false, nil}, // everyone
	{"C02", "random", false, false, []string{"U01", "U02", "U03", "U04", "U05", "U06", "U07", "U08", "U09", "U0A", "U0C", "U0D"}},
	{"C03", "design-team", false, false, []string{"U01", "U06", "U09", "U0E"}},
	{"C04", "dev", false, false, []string{"U01", "U03", "U11"}},
	{"C05", "devops", false, false, []string{"U03", "U11"}},
	{"C06", "frontend-dev", false, false, []string{"U04"}},
	{"C07", "secret-plans", true, false, []string{"U07", "U08"}},
	{"C08", "salary-review", true, false, []string{"U01", "U0F"}},
	{"C09", "old-project", false, true, []string{"U01", "U02"}},
	{"C0A", "security", false, false, []string{"U13"}},
	{"C0B", "marketing", false, false, []string{"U08", "U10"}},
	{"C0C", "generators", false, false, []string{"U12"}},
}

// goldenMessages are fed in order: their senders and channels become recently active.
var goldenMessages = [][2]string{{"U05", "C02"}, {"U08", "C0B"}, {"U07", "C07"}}

type golden struct {
	st  *cache.Store
	x   *index.Index
	seq int64
}

func newGolden(t testing.TB, cfg index.Config) *golden {
	t.Helper()
	st := cache.NewStore(goldenTeam)
	var users []origin.User
	for _, u := range goldenUsers {
		users = append(users, origin.User{ID: u.id, Team: goldenTeam, Name: u.name, RealName: u.real,
			DisplayName: u.display, Deleted: u.deleted, IsBot: u.bot, Updated: 1})
	}
	st.ApplyUsers(users)
	var chans []origin.Channel
	var rows []origin.Membership
	for _, c := range goldenChannels {
		chans = append(chans, origin.Channel{ID: c.id, Team: goldenTeam, Name: c.name, IsPrivate: c.private,
			IsArchived: c.archived, Updated: 1})
		members := c.members
		if members == nil {
			for _, u := range goldenUsers {
				members = append(members, u.id)
			}
		}
		for _, m := range members {
			rows = append(rows, origin.Membership{Channel: c.id, User: m, Updated: 1})
		}
	}
	st.ApplyChannels(chans)
	st.ApplyMemberships(rows)
	g := &golden{st: st, x: index.New(st, cfg)}
	t.Cleanup(g.x.Close)
	waitReady(t, g.x)
	for _, m := range goldenMessages {
		g.feed(t, &origin.Event{Type: origin.EventMessage, UserID: m[0], ChannelID: m[1], Text: "hi"})
	}
	return g
}

// feed applies ev as a team's feed does: to the store, then to its follower.
func (g *golden) feed(t testing.TB, ev *origin.Event) {
	t.Helper()
	g.seq++
	ev.Team, ev.Seq = goldenTeam, g.seq
	ch, ok := g.st.ApplyEvent(ev)
	if !ok {
		t.Fatalf("store refused event %+v", ev)
	}
	g.x.Apply(ev, ch)
}

func waitReady(t testing.TB, x *index.Index) {
	t.Helper()
	select {
	case <-x.Ready():
	case <-time.After(time.Minute):
		t.Fatal("index not ready after a minute")
	}
}

// labels runs q and returns the results' labels in order.
func (g *golden) labels(t *testing.T, q index.Query) []string {
	t.Helper()
	res, err := g.x.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = r.Label
	}
	return out
}

// TestGolden: 40 queries with their exact expected results, each reviewed for whether a person
// typing it into a Quick Switcher would find the order right; the reason is beside the case.
func TestGolden(t *testing.T) {
	g := newGolden(t, index.Config{})
	q := func(text string) index.Query { return index.Query{Text: text, Caller: "U01"} }
	cases := []struct {
		q    index.Query
		want []string
		why  string
	}{
		{q("jose nun"), []string{"José Núñez"}, "accents and case folded; every word a prefix"},
		{q("JOSÉ"), []string{"José Núñez"}, ""},
		{q("jose nunez"), []string{"José Núñez"}, ""},
		{q("zoe"), []string{"Zoë Dvořák"}, "ë"},
		{q("lukasz"), []string{"Łukasz Wójcik"}, "ł has no decomposition: spelled l"},
		{q("soren oster"), []string{"Søren Østergaard"}, "ø spelled o"},
		{q("nguyen"), []string{"Nguyễn Văn An"}, "Vietnamese stacked marks"},
		{q("john"), []string{"John Smith", "Sarah Johnson", "Johnny Appleseed"},
			"whole word first; then Sarah, recently active, before Johnny"},
		{q("jo"), []string{"John Smith", "José Núñez", "Sarah Johnson", "Johnny Appleseed"},
			"John shares #dev and José #old-project with Alex (by matched word among them); Sarah is recent; Johnny last"},
		{q("mar"), []string{"Mark Twain", "Marie Curie", "María García", "#marketing", "Marcus Aurelius"},
			"Mark shares #design-team; then by latest activity (María and #marketing share one message: the matched word decides); Marcus never spoke"},
		{q("mar cu"), []string{"Marie Curie"}, "two words narrow"},
		{q("gen"), []string{"#general", "#generators", "Geneviève Roy"}, "Alex is in #general; then by matched word"},
		{q("general"), []string{"#general"}, ""},
		{q("dev"), []string{"#dev", "Devon Lee", "#frontend-dev", "#devops"},
			"whole-word matches first (Alex's #dev and Devon, then #frontend-dev), then #devops by prefix"},
		{index.Query{Text: "dev", Caller: "U01", Users: true}, []string{"Devon Lee"}, "types: users"},
		{index.Query{Text: "dev", Caller: "U01", Channels: true}, []string{"#dev", "#frontend-dev", "#devops"}, "types: channels"},
		{q("sec"), []string{"#security"}, "#secret-plans is private and Alex is not in it"},
		{q("secret"), []string{}, "not even a typo match leaks a private channel"},
		{q("sal"), []string{"#salary-review"}, "a private channel Alex is in"},
		{index.Query{Text: "sal", Caller: "U02"}, []string{}, "José is not in #salary-review"},
		{index.Query{Text: "sec", Caller: "U07"}, []string{"#secret-plans", "#security"}, "Marie is in #secret-plans"},
		{q("old"), []string{}, "archived channels are left out"},
		{index.Query{Text: "old", Caller: "U01", IncludeInactive: true}, []string{"#old-project"}, ""},
		{q("bob"), []string{}, "deleted users are left out"},
		{index.Query{Text: "bob", Caller: "U01", IncludeInactive: true}, []string{"Bob Gone"}, ""},
		{q("ace"), []string{"Ace (Alan Ventura)"}, "found by display name; the label shows both"},
		{q("alan"), []string{"Ace (Alan Ventura)"}, ""},
		{q("al"), []string{"Alex Morgan", "Ace (Alan Ventura)"}, "yourself, close to yourself, first"},
		{q("design team"), []string{"#design-team"}, "split on '-'"},
		{q("design-t"), []string{"#design-team"}, ""},
		{q("john.sm"), []string{"John Smith"}, "split on '.'"},
		{q("smith"), []string{"Jane Smith", "John Smith"}, "both close to Alex; alphabetical"},
		{q("an"), []string{"Nguyễn Văn An", "Ana Silva"}, "whole word \"An\" first"},
		{q("deploy"), []string{"Deploy Bot"}, "bots are found"},
		{index.Query{Text: "mar", Caller: "U01", Limit: 2}, []string{"Mark Twain", "Marie Curie"}, "limit"},
		{index.Query{Text: "ma", Caller: "U01", Channels: true}, []string{"#marketing"}, ""},
		{q("jhon"), []string{"John Smith"}, "typo: two letters swapped"},
		{q("marcsu"), []string{"Marcus Aurelius"}, "typo"},
		{q("smiht"), []string{"Jane Smith", "John Smith"}, "typo, same order as \"smith\""},
		{q("x"), []string{}, "nothing starts with x"},
		{q("  "), []string{}, "an empty query finds nothing"},
	}
	testkit.EventuallyWithin(t, time.Minute, g.x.FuzzyReady, "the typo fallback")
	for _, c := range cases {
		got := g.labels(t, c.q)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: got %q, want %q (%s)", describe(c.q), got, c.want, c.why)
		}
	}
	if len(cases) < 30 {
		t.Fatalf("the golden test needs 30+ queries, has %d", len(cases))
	}
}

func describe(q index.Query) string {
	s := fmt.Sprintf("%q as %s", q.Text, q.Caller)
	if q.Users || q.Channels {
		s += fmt.Sprintf(" users=%v channels=%v", q.Users, q.Channels)
	}
	if q.Limit > 0 {
		s += fmt.Sprintf(" limit=%d", q.Limit)
	}
	if q.IncludeInactive {
		s += " include_inactive"
	}
	return s
}
