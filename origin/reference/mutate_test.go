package reference

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// refMembership finds (user, channel) in the memberships pages.
func refMembership(t *testing.T, ms []origin.Membership, channel, user string) (origin.Membership, bool) {
	t.Helper()
	for _, m := range ms {
		if m.Channel == channel && m.User == user {
			return m, true
		}
	}
	return origin.Membership{}, false
}

func refChannelPage(t *testing.T, cs []origin.Channel, id string) (origin.Channel, bool) {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return origin.Channel{}, false
}

// refOpenChannel returns a live, public, unarchived channel of team and an active user who is
// not in it.
func refOpenChannel(t *testing.T, s *Server, team string) (channel, outsider string) {
	t.Helper()
	for _, c := range s.Channels(team)[2:] {
		if c.IsArchived || c.IsPrivate {
			continue
		}
		for _, u := range s.Users(team) {
			if !u.Deleted && !slices.Contains(s.ChannelsOf(team, u.ID), c.ID) {
				return c.ID, u.ID
			}
		}
	}
	t.Fatal("no open channel with an outsider")
	return "", ""
}

func TestMutationsShowInPages(t *testing.T) {
	pub := &refPublisher{}
	s, hs := refServe(t, ServerConfig{Publisher: pub})
	team, ctx := s.TeamIDs()[0], t.Context()
	seq := int64(0)
	next := func(ev *origin.Event, err error) *origin.Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		seq++
		if ev.Seq != seq || ev.Team != team || s.Seq(team) != seq {
			t.Fatalf("event %s seq %d team %s, server seq %d; want seq %d", ev.Type, ev.Seq, ev.Team, s.Seq(team), seq)
		}
		if err := ev.Validate(team); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	channel, user := refOpenChannel(t, s, team)

	ev := next(s.JoinChannel(ctx, team, channel, user))
	before, _ := s.World().Channel(channel)
	if ev.Type != origin.EventMemberJoined || ev.ChannelID != channel || ev.UserID != user || ev.Updated != seq+1 {
		t.Fatalf("join event %+v", ev)
	}
	m, ok := refMembership(t, refWalkMemberships(t, hs, team, 100), channel, user)
	c, _ := refChannelPage(t, refWalkChannels(t, hs, team, 100), channel)
	if !ok || m.Updated != seq+1 || c.MemberCount != before.MemberCount+1 {
		t.Fatalf("after join: membership %+v %v, member_count %d (was %d)", m, ok, c.MemberCount, before.MemberCount)
	}

	ev = next(s.PostMessage(ctx, team, channel, user, "hi <@U00000001>", []string{"U00000001"}))
	if ev.Type != origin.EventMessage || ev.TS == "" || !regexp.MustCompile(`^\d{10}\.\d{6}$`).MatchString(ev.TS) ||
		!slices.Equal(ev.Mentions, []string{"U00000001"}) {
		t.Fatalf("message event %+v", ev)
	}
	ev2 := next(s.PostMessage(ctx, team, channel, user, "again", nil))
	if ev2.TS <= ev.TS {
		t.Fatalf("message ts %s after %s", ev2.TS, ev.TS)
	}

	ev = next(s.LeaveChannel(ctx, team, channel, user))
	if _, ok := refMembership(t, refWalkMemberships(t, hs, team, 100), channel, user); ok || ev.Updated != seq+1 {
		t.Fatalf("after leave: membership still listed, or event %+v", ev)
	}
	if c, _ := s.Channel(team, channel); c.MemberCount != before.MemberCount {
		t.Fatalf("after leave: member_count %d, want %d", c.MemberCount, before.MemberCount)
	}

	ev = next(s.UpdateUser(ctx, team, user, func(u *origin.User) { u.Title = "Chief Tester"; u.DisplayName = "Tess" }))
	var u origin.User
	refGetJSON(t, hs, "/origin/v1/teams/"+team+"/users/"+user, &u)
	if u.Title != "Chief Tester" || u.DisplayName != "Tess" || u.Updated != seq+1 || *ev.User != u {
		t.Fatalf("after user change: %+v, event %+v", u, ev.User)
	}

	ev = next(s.CreateChannel(ctx, team, "proj-new-thing", user, true))
	created := ev.Channel.ID
	c, ok = refChannelPage(t, refWalkChannels(t, hs, team, 7), created)
	m, mok := refMembership(t, refWalkMemberships(t, hs, team, 100), created, user)
	if !ok || c.Name != "proj-new-thing" || !c.IsPrivate || c.MemberCount != 1 || c.Updated != seq+1 ||
		c.Creator != user || !mok || m.Updated != seq+1 || *ev.Channel != c {
		t.Fatalf("created channel %+v (listed %v), membership %+v %v, event %+v", c, ok, m, mok, ev.Channel)
	}

	ev = next(s.UpdateChannel(ctx, team, created, func(c *origin.Channel) {
		c.Name, c.Topic, c.IsArchived = "proj-renamed", "new topic", true
	}))
	c, _ = refChannelPage(t, refWalkChannels(t, hs, team, 100), created)
	if c.Name != "proj-renamed" || c.Topic != "new topic" || !c.IsArchived || c.Updated != seq+1 || c.MemberCount != 1 ||
		ev.Channel == nil || *ev.Channel != c {
		t.Fatalf("after channel change: %+v, event %+v", c, ev.Channel)
	}
	// The old name is free again, the new one taken.
	next(s.CreateChannel(ctx, team, "proj-new-thing", user, false))
	if _, err := s.CreateChannel(ctx, team, "proj-renamed", user, false); !errors.Is(err, ErrBadChange) {
		t.Fatalf("taking a renamed channel's name: %v", err)
	}

	ev = next(s.DeleteChannel(ctx, team, created))
	if ev.Type != origin.EventChannelDeleted || ev.ChannelID != created || ev.Updated != seq+1 {
		t.Fatalf("delete event %+v", ev)
	}
	if _, ok := refChannelPage(t, refWalkChannels(t, hs, team, 100), created); ok {
		t.Fatal("deleted channel still listed")
	}
	if _, ok := refMembership(t, refWalkMemberships(t, hs, team, 100), created, user); ok {
		t.Fatal("membership of a deleted channel still listed")
	}
	refWantError(t, hs, "", "/origin/v1/teams/"+team+"/channels/"+created, 404, "channel_not_found")

	ev = next(s.UpdateTeam(ctx, team, func(tm *origin.Team) { tm.Name = "Renamed Inc."; tm.UserCount = 1 }))
	var info origin.TeamInfo
	refGetJSON(t, hs, "/origin/v1/teams/"+team, &info)
	if info.Team.Name != "Renamed Inc." || info.Team.Updated != seq+1 || info.Team.UserCount != refSize.Users ||
		info.Seq != seq || *ev.TeamInfo != info.Team {
		t.Fatalf("after team change: %+v, event %+v", info, ev.TeamInfo)
	}

	// Rejoining gives the membership a new, higher version.
	next(s.JoinChannel(ctx, team, channel, user))
	if m, ok := refMembership(t, s.Memberships(team), channel, user); !ok || m.Updated != seq+1 {
		t.Fatalf("rejoined: %+v %v", m, ok)
	}
	if got := pub.seqs(team); len(got) != int(seq) || got[len(got)-1] != seq {
		t.Fatalf("published %v, want 1..%d", got, seq)
	}
	// Other teams are untouched.
	if s.Seq(s.TeamIDs()[1]) != 0 {
		t.Fatal("another team's seq moved")
	}
}

func TestBadChangesChangeNothing(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team, ctx := s.TeamIDs()[0], t.Context()
	channel, outsider := refOpenChannel(t, s, team)
	member := userID(0, 0)
	general := channelID(0, 0)
	var archived, deletedUser string
	for _, c := range s.Channels(team) {
		if c.IsArchived {
			archived = c.ID
		}
	}
	for _, u := range s.Users(team) {
		if u.Deleted {
			deletedUser = u.ID
		}
	}
	if archived == "" || deletedUser == "" {
		t.Fatal("the test world has no archived channel or no deleted user")
	}
	otherTeamUser := userID(1, 1)
	refMust(t)(s.CreateChannel(ctx, team, "taken-name", member, false))
	before := refSnapshotBytes(t, hs, team)
	seq := s.Seq(team)

	for name, change := range map[string]func() (*origin.Event, error){
		"unknown team":         func() (*origin.Event, error) { return s.JoinChannel(ctx, "T00000009", channel, outsider) },
		"unknown channel":      func() (*origin.Event, error) { return s.JoinChannel(ctx, team, "C000000ZZ", outsider) },
		"unknown user":         func() (*origin.Event, error) { return s.JoinChannel(ctx, team, channel, "U000000ZZ") },
		"user of another team": func() (*origin.Event, error) { return s.JoinChannel(ctx, team, channel, otherTeamUser) },
		"join twice":           func() (*origin.Event, error) { return s.JoinChannel(ctx, team, general, member) },
		"join archived":        func() (*origin.Event, error) { return s.JoinChannel(ctx, team, archived, outsider) },
		"deleted user joins":   func() (*origin.Event, error) { return s.JoinChannel(ctx, team, channel, deletedUser) },
		"leave when not in":    func() (*origin.Event, error) { return s.LeaveChannel(ctx, team, channel, outsider) },
		"leave general":        func() (*origin.Event, error) { return s.LeaveChannel(ctx, team, general, member) },
		"message by outsider":  func() (*origin.Event, error) { return s.PostMessage(ctx, team, channel, outsider, "hi", nil) },
		"empty message":        func() (*origin.Event, error) { return s.PostMessage(ctx, team, general, member, "", nil) },
		"bad mention": func() (*origin.Event, error) {
			return s.PostMessage(ctx, team, general, member, "hi", []string{otherTeamUser})
		},
		"message in archived": func() (*origin.Event, error) { return s.PostMessage(ctx, team, archived, member, "x", nil) },
		"user id change": func() (*origin.Event, error) {
			return s.UpdateUser(ctx, team, member, func(u *origin.User) { u.ID = "U00000001" })
		},
		"unknown user change": func() (*origin.Event, error) { return s.UpdateUser(ctx, team, "U0000", func(*origin.User) {}) },
		"bad channel name":    func() (*origin.Event, error) { return s.CreateChannel(ctx, team, "Has Spaces", member, false) },
		"long channel name": func() (*origin.Event, error) {
			return s.CreateChannel(ctx, team, string(bytes.Repeat([]byte("a"), 81)), member, false)
		},
		"taken channel name": func() (*origin.Event, error) { return s.CreateChannel(ctx, team, "taken-name", member, false) },
		"deleted creator":    func() (*origin.Event, error) { return s.CreateChannel(ctx, team, "fresh", deletedUser, false) },
		"rename to taken": func() (*origin.Event, error) {
			return s.UpdateChannel(ctx, team, channel, func(c *origin.Channel) { c.Name = "random" })
		},
		"archive general": func() (*origin.Event, error) {
			return s.UpdateChannel(ctx, team, general, func(c *origin.Channel) { c.IsArchived = true })
		},
		"channel id change": func() (*origin.Event, error) {
			return s.UpdateChannel(ctx, team, channel, func(c *origin.Channel) { c.Team = "T00000001" })
		},
		"delete general": func() (*origin.Event, error) { return s.DeleteChannel(ctx, team, general) },
		"delete unknown": func() (*origin.Event, error) { return s.DeleteChannel(ctx, team, "C00000ZZZ") },
		"team id change": func() (*origin.Event, error) {
			return s.UpdateTeam(ctx, team, func(t *origin.Team) { t.ID = "T00000001" })
		},
		"team without a name": func() (*origin.Event, error) { return s.UpdateTeam(ctx, team, func(t *origin.Team) { t.Name = "" }) },
		// Events over MaxEventBytes (NATS would refuse them, and the outbox would hold them
		// first for ever): refused before anything changes.
		"too large: message": func() (*origin.Event, error) {
			return s.PostMessage(ctx, team, general, member, strings.Repeat("x", MaxEventBytes), nil)
		},
		"too large: user": func() (*origin.Event, error) {
			return s.UpdateUser(ctx, team, member, func(u *origin.User) { u.Title = strings.Repeat("t", MaxEventBytes) })
		},
		"too large: channel": func() (*origin.Event, error) {
			return s.UpdateChannel(ctx, team, channel, func(c *origin.Channel) { c.Topic = strings.Repeat("t", MaxEventBytes) })
		},
		"too large: team": func() (*origin.Event, error) {
			return s.UpdateTeam(ctx, team, func(t *origin.Team) { t.Name = strings.Repeat("n", MaxEventBytes) })
		},
	} {
		ev, err := change()
		if !errors.Is(err, ErrBadChange) || ev != nil {
			t.Errorf("%s: got %v, %v; want ErrBadChange", name, ev, err)
		}
		if strings.HasPrefix(name, "too large") != errors.Is(err, ErrEventTooLarge) {
			t.Errorf("%s: %v; ErrEventTooLarge only for the too large", name, err)
		}
	}
	if s.Seq(team) != seq || s.team(team).seq != seq {
		t.Fatalf("bad changes moved the seq from %d to %d", seq, s.Seq(team))
	}
	if after := refSnapshotBytes(t, hs, team); !bytes.Equal(before, after) {
		t.Fatal("bad changes changed the team")
	}
}

func TestFailedPublishLeavesNoHole(t *testing.T) {
	pub := &refPublisher{}
	s, hs := refServe(t, ServerConfig{Publisher: pub})
	team, ctx := s.TeamIDs()[0], t.Context()
	title := func(v string) func(*origin.User) { return func(u *origin.User) { u.Title = v } }
	user := userID(0, 1)

	refMust(t)(s.UpdateUser(ctx, team, user, title("one")))
	pub.setFailing(true)
	ev, err := s.UpdateUser(ctx, team, user, title("two"))
	if !errors.Is(err, errRefPublish) || ev == nil || ev.Seq != 2 {
		t.Fatalf("failed publish: %v, %v; want seq 2 and the publisher's error", ev, err)
	}
	var info origin.TeamInfo
	refGetJSON(t, hs, "/origin/v1/teams/"+team, &info)
	if info.Seq != 1 || s.Seq(team) != 1 {
		t.Fatalf("seq %d reported with event 2 unpublished", info.Seq)
	}
	if u, _ := s.User(team, user); u.Title != "two" || u.Updated != 3 {
		t.Fatalf("a change whose publish failed is applied and pending: %+v", u)
	}
	// While the bus is down, later changes are applied and queued behind event 2: an outbox.
	if ev, err := s.UpdateUser(ctx, team, user, title("three")); ev == nil || ev.Seq != 3 || !errors.Is(err, ErrPending) {
		t.Fatalf("change while event 2 is pending: %v, %v; want seq 3 queued", ev, err)
	}
	if u, _ := s.User(team, user); u.Title != "three" || s.Seq(team) != 1 {
		t.Fatalf("a queued change: %+v, published seq %d", u, s.Seq(team))
	}
	pub.setFailing(false)
	ev = refMust(t)(s.UpdateUser(ctx, team, user, title("four")))
	if ev.Seq != 4 || !slices.Equal(pub.seqs(team), []int64{1, 2, 3, 4}) || s.Seq(team) != 4 {
		t.Fatalf("after recovery: event seq %d, published %v", ev.Seq, pub.seqs(team))
	}
	// Flush publishes what is pending without a new change.
	pub.setFailing(true)
	if _, err := s.JoinChannel(ctx, team, refOpenChannelID(t, s, team, user), user); !errors.Is(err, errRefPublish) {
		t.Fatalf("join with the bus down: %v", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, errRefPublish) {
		t.Fatalf("Flush with the bus down: %v", err)
	}
	pub.setFailing(false)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pub.seqs(team), []int64{1, 2, 3, 4, 5}) || s.Seq(team) != 5 {
		t.Fatalf("after Flush: published %v, seq %d", pub.seqs(team), s.Seq(team))
	}
	for _, ev := range pub.all() {
		if err := ev.Validate(team); err != nil {
			t.Fatal(err)
		}
	}
}

// refOpenChannelID returns an open public channel user is not in.
func refOpenChannelID(t *testing.T, s *Server, team, user string) string {
	t.Helper()
	for _, c := range s.Channels(team)[1:] {
		if !c.IsArchived && !c.IsPrivate && !slices.Contains(s.ChannelsOf(team, user), c.ID) {
			return c.ID
		}
	}
	t.Fatal("no channel to join")
	return ""
}

func TestNilPublisherPublishesAtOnce(t *testing.T) {
	s, _ := refServe(t, ServerConfig{})
	team := s.TeamIDs()[1]
	for i := range 5 {
		refMust(t)(s.UpdateTeam(t.Context(), team, func(tm *origin.Team) { tm.Name = "Team " + string(rune('A'+i)) }))
	}
	if s.Seq(team) != 5 || s.Flush(t.Context()) != nil {
		t.Fatalf("seq %d after 5 changes", s.Seq(team))
	}
}

// TestListingsReflectPublishedSeq checks weft's loading rule under concurrency: a listing read
// after GET /teams/{team} returned seq S shows every event <= S.
func TestListingsReflectPublishedSeq(t *testing.T) {
	pub := &refPublisher{}
	s, hs := refServe(t, ServerConfig{Publisher: pub})
	team, ctx := s.TeamIDs()[0], t.Context()
	user := userID(0, 0)
	var joins []string
	for _, c := range s.Channels(team) {
		if !c.IsArchived && !slices.Contains(s.ChannelsOf(team, user), c.ID) {
			joins = append(joins, c.ID)
		}
	}
	var wg sync.WaitGroup
	joined := make(chan struct{})
	wg.Go(func() {
		defer close(joined)
		for _, c := range joins {
			if _, err := s.JoinChannel(ctx, team, c, user); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() { // a second team changes at the same time
		for i := range 50 {
			_, _ = s.UpdateTeam(ctx, s.TeamIDs()[1], func(tm *origin.Team) { tm.Name = "Busy " + string(rune('a'+i%26)) })
		}
	})
	for last := false; !last; {
		select {
		case <-joined:
			last = true // one more check after the last join
		default:
		}
		var info origin.TeamInfo
		refGetJSON(t, hs, "/origin/v1/teams/"+team, &info)
		listed := refWalkMemberships(t, hs, team, 500)
		for _, ev := range pub.all() {
			if ev.Team != team || ev.Seq > info.Seq {
				continue
			}
			if _, ok := refMembership(t, listed, ev.ChannelID, ev.UserID); !ok {
				t.Fatalf("seq %d reported, but the join of seq %d is not listed", info.Seq, ev.Seq)
			}
		}
	}
	wg.Wait()
	if s.Seq(team) != int64(len(joins)) {
		t.Fatalf("seq %d after %d joins", s.Seq(team), len(joins))
	}
}

// KeepFlushing publishes a pending event once the bus is back, with no further change.
func TestKeepFlushingPublishesPending(t *testing.T) {
	pub := &refPublisher{}
	s, _ := refServe(t, ServerConfig{Publisher: pub})
	team := s.TeamIDs()[0]
	pub.setFailing(true)
	if _, err := s.UpdateUser(t.Context(), team, userID(0, 1), func(u *origin.User) { u.Title = "pending" }); !errors.Is(err, errRefPublish) {
		t.Fatalf("change with the bus down: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.KeepFlushing(ctx, time.Millisecond)
	}()
	defer func() { cancel(); <-done }()
	pub.setFailing(false)
	testkit.Eventually(t, func() bool { return s.Seq(team) == 1 }, "the pending event published")
	if !slices.Equal(pub.seqs(team), []int64{1}) {
		t.Fatalf("published %v", pub.seqs(team))
	}
}

// downPublisher is a refPublisher that says whether it is connected, as pubsub.Bus does, and
// counts publish attempts.
type downPublisher struct {
	refPublisher
	up       atomic.Bool
	attempts atomic.Int64
}

func (p *downPublisher) Connected() bool { return p.up.Load() }

func (p *downPublisher) PublishEvent(ctx context.Context, ev *origin.Event) error {
	p.attempts.Add(1)
	return p.refPublisher.PublishEvent(ctx, ev)
}

// While the publisher says it is down, changes after a failed publish are queued without an
// attempt each (no publish timeout per change), and go out in order once it is back.
func TestChangesQueueWhileBusDown(t *testing.T) {
	pub := &downPublisher{}
	s, _ := refServe(t, ServerConfig{Publisher: pub})
	team, ctx, user := s.TeamIDs()[0], t.Context(), userID(0, 1)
	pub.setFailing(true)
	for i := range 6 {
		ev, err := s.UpdateUser(ctx, team, user, func(u *origin.User) { u.Title = fmt.Sprint("t", i) })
		if ev == nil || ev.Seq != int64(i+1) || !errors.Is(err, ErrPending) {
			t.Fatalf("change %d with the bus down: %v, %v", i, ev, err)
		}
	}
	if n := pub.attempts.Load(); n != 1 {
		t.Fatalf("%d publish attempts with the bus down; want only the first change's", n)
	}
	if err := s.Flush(ctx); !errors.Is(err, ErrPending) || pub.attempts.Load() != 1 {
		t.Fatalf("Flush with the bus down: %v, %d attempts", err, pub.attempts.Load())
	}
	pub.up.Store(true)
	pub.setFailing(false)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pub.seqs(team), []int64{1, 2, 3, 4, 5, 6}) || s.Seq(team) != 6 {
		t.Fatalf("after the bus is back: published %v, seq %d", pub.seqs(team), s.Seq(team))
	}
}
