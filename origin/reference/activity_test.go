package reference

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// refRunActivity runs an activity until cond holds on the published events, then stops it and
// checks that Run returned.
func refRunActivity(t *testing.T, cfg ActivityConfig, what string, cond func() bool) *Activity {
	t.Helper()
	a, err := NewActivity(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testkit.Eventually(t, cond, what)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return a
}

func TestActivityEvents(t *testing.T) {
	pub := &refPublisher{}
	size, _ := SizeByName("tiny")
	s, _ := refServe(t, ServerConfig{World: refWorld(t, 9, size), Publisher: pub})
	// A mix rich in rare kinds, so a short run sees them all.
	mix := Mix{Messages: 10, Profiles: 3, Memberships: 3, ChannelEdits: 2, Archives: 2, Creations: 2, TeamChanges: 1}
	a := refRunActivity(t, ActivityConfig{Server: s, Rate: 3000, Seed: 1, Mix: mix}, "400 events",
		func() bool { return len(pub.all()) >= 400 })

	events := pub.all()
	types := map[string]int{}
	last := map[string]int64{}
	for _, ev := range events {
		if err := ev.Validate(ev.Team); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != last[ev.Team]+1 {
			t.Fatalf("team %s: seq %d after %d", ev.Team, ev.Seq, last[ev.Team])
		}
		last[ev.Team] = ev.Seq
		types[ev.Type]++
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := origin.DecodeEvent(ev.Team, data); err != nil {
			t.Fatalf("published event does not decode: %v: %s", err, data)
		}
		if ev.Type == origin.EventMessage {
			if strings.Contains(ev.Text, "%!") || strings.Contains(ev.Text, "%s") {
				t.Fatalf("message text %q is a broken template", ev.Text)
			}
			for _, m := range ev.Mentions {
				if !strings.Contains(ev.Text, "<@"+m+">") || m == ev.UserID {
					t.Fatalf("message %q mentions %v", ev.Text, ev.Mentions)
				}
			}
		}
	}
	if len(last) != len(s.TeamIDs()) {
		t.Fatalf("activity reached %d of %d teams", len(last), len(s.TeamIDs()))
	}
	for team, seq := range last {
		if s.Seq(team) != seq {
			t.Fatalf("team %s: server seq %d, last published %d", team, s.Seq(team), seq)
		}
	}
	for _, typ := range []string{origin.EventMessage, origin.EventUserChange, origin.EventMemberJoined, origin.EventMemberLeft,
		origin.EventChannelChange, origin.EventChannelCreated, origin.EventTeamChange} {
		if types[typ] == 0 {
			t.Errorf("no %s event in %d: %v", typ, len(events), types)
		}
	}
	if st := a.Stats(); st.Events < int64(len(events)) || st.Errors != 0 {
		t.Fatalf("stats %+v for %d events", st, len(events))
	}
}

func TestActivityDefaultMixIsMostlyMessages(t *testing.T) {
	pub := &refPublisher{}
	s, _ := refServe(t, ServerConfig{Publisher: pub})
	team := s.TeamIDs()[1]
	refRunActivity(t, ActivityConfig{Server: s, Rate: 2000, Teams: []string{team}}, "200 events",
		func() bool { return len(pub.all()) >= 200 })
	messages := 0
	for _, ev := range pub.all() {
		if ev.Team != team {
			t.Fatalf("event of team %s, activity is on %s only", ev.Team, team)
		}
		if ev.Type == origin.EventMessage {
			messages++
		}
	}
	if n := len(pub.all()); messages < n*7/10 {
		t.Fatalf("%d messages in %d events", messages, n)
	}
}

func TestActivitySurvivesPublishErrors(t *testing.T) {
	pub := &refPublisher{failing: true}
	s, _ := refServe(t, ServerConfig{Publisher: pub})
	a, err := NewActivity(ActivityConfig{Server: s, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testkit.Eventually(t, func() bool { return a.Stats().Errors >= 20 }, "publish errors")
	pub.setFailing(false)
	testkit.Eventually(t, func() bool { return len(pub.all()) >= 50 }, "events after recovery")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, team := range s.TeamIDs() {
		seqs := pub.seqs(team)
		for i, seq := range seqs {
			if seq != int64(i+1) {
				t.Fatalf("team %s published %v: a hole", team, seqs)
			}
		}
	}
}

func TestNewActivityValidates(t *testing.T) {
	s, _ := refServe(t, ServerConfig{})
	for name, cfg := range map[string]ActivityConfig{
		"no server":     {},
		"negative rate": {Server: s, Rate: -1},
		"unknown team":  {Server: s, Teams: []string{"T000000ZZ"}},
		"no teams":      {Server: s, Teams: []string{}},
		"negative mix":  {Server: s, Mix: Mix{Messages: 1, Profiles: -1}},
		"infinite rate": {Server: s, Rate: math.Inf(1)},
		"NaN mix":       {Server: s, Mix: Mix{Messages: math.NaN()}},
	} {
		if _, err := NewActivity(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	a, err := NewActivity(ActivityConfig{Server: s})
	if err != nil || a.cfg.Rate != 10 || a.cfg.Mix != DefaultMix || !slices.Equal(s.TeamIDs(), refTeamIDs(a)) {
		t.Fatalf("defaults: %+v, %v", a, err)
	}
}

func refTeamIDs(a *Activity) []string {
	var ids []string
	for _, st := range a.teams {
		ids = append(ids, st.id)
	}
	return ids
}
