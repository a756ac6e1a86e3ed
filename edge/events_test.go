package edge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
)

// audience models who may see each event of a team (docs/protocol.md sections 4 and 5), from the
// origin's memberships at the start and the events applied in seq order since.
type audience struct {
	users   []string
	members map[string]map[string]bool
	private map[string]bool
}

func newAudience(o *reference.Server, team string) *audience {
	a := &audience{members: make(map[string]map[string]bool), private: make(map[string]bool)}
	for _, u := range o.Users(team) {
		if !u.Deleted { // a deactivated user cannot connect (TestDeactivatedUserRefused)
			a.users = append(a.users, u.ID)
		}
	}
	for _, c := range o.Channels(team) {
		a.members[c.ID] = make(map[string]bool)
		a.private[c.ID] = c.IsPrivate
	}
	for _, m := range o.Memberships(team) {
		a.members[m.Channel][m.User] = true
	}
	return a
}

// apply applies ev and returns who may see it.
func (a *audience) apply(ev *origin.Event) map[string]bool {
	everyone := func() map[string]bool {
		out := make(map[string]bool)
		for _, u := range a.users {
			out[u] = true
		}
		return out
	}
	of := func(ch string) map[string]bool {
		out := make(map[string]bool)
		for u := range a.members[ch] {
			out[u] = true
		}
		return out
	}
	switch ev.Type {
	case origin.EventMessage:
		return of(ev.ChannelID)
	case origin.EventMemberJoined:
		a.members[ev.ChannelID][ev.UserID] = true
		return of(ev.ChannelID)
	case origin.EventMemberLeft:
		out := of(ev.ChannelID)
		delete(a.members[ev.ChannelID], ev.UserID)
		return out
	case origin.EventChannelCreated:
		a.members[ev.Channel.ID] = map[string]bool{ev.Channel.Creator: true}
		a.private[ev.Channel.ID] = ev.Channel.IsPrivate
		if ev.Channel.IsPrivate {
			return of(ev.Channel.ID)
		}
		return everyone()
	case origin.EventChannelChange, origin.EventChannelDeleted:
		if id := ev.ChannelScope(); a.private[id] {
			return of(id)
		}
		return everyone()
	case origin.EventUserChange, origin.EventTeamChange:
		return everyone()
	}
	panic("unexpected event type " + ev.Type)
}

// expected returns, per user, the seqs after from that user may see, from events in any order.
func (a *audience) expected(events []*origin.Event, from int64) map[string][]int64 {
	events = slices.Clone(events)
	sort.Slice(events, func(i, j int) bool { return events[i].Seq < events[j].Seq })
	out := make(map[string][]int64)
	for _, ev := range events {
		for u := range a.apply(ev) {
			if ev.Seq > from {
				out[u] = append(out[u], ev.Seq)
			}
		}
	}
	return out
}

// checkStream checks that c got exactly want, in strictly increasing seq order.
func checkStream(t *testing.T, c *wsClient, want []int64) {
	t.Helper()
	got := c.seqs()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("%s: seq %d after %d", c.user, got[i], got[i-1])
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s got seqs %v\nwant %v", c.user, got, want)
	}
}

func (h *harness) markerEvent(team string) *origin.Event {
	return h.must(h.origin.UpdateUser(context.Background(), team, h.user(team, 0), func(u *origin.User) {
		u.Title = fmt.Sprintf("marker %d", time.Now().UnixNano())
	}))
}

func waitAll(t *testing.T, clients []*wsClient, seq int64) {
	t.Helper()
	waitAllOr(t, clients, seq, nil)
}

// waitAllOr waits for every client to get seq; on timeout it calls diag (when not nil) to log
// what it can before the test fails.
func waitAllOr(t *testing.T, clients []*wsClient, seq int64, diag func()) {
	t.Helper()
	testkit.EventuallyOr(t, 20*time.Second, func() bool {
		for _, c := range clients {
			if !c.hasSeq(seq) {
				return false
			}
		}
		return true
	}, fmt.Sprintf("every client to get seq %d", seq), diag)
}

func TestEventsReachOnlyWhoMaySee(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	team := h.team
	a := newAudience(h.origin, team)
	alice, bob, carol := h.user(team, 1), h.user(team, 2), h.user(team, 3)
	// erin leaves a public channel she is in; frank joins one he is not in.
	active := make(map[string]bool)
	for _, u := range h.origin.Users(team) {
		active[u.ID] = !u.Deleted
	}
	var left, joined, erin, frank string
	for _, c := range h.origin.Channels(team)[1:] {
		for _, u := range a.users[4:] {
			if !active[u] {
				continue
			}
			switch {
			case left == "" && a.members[c.ID][u] && u != frank:
				left, erin = c.ID, u
			case joined == "" && !a.members[c.ID][u] && u != erin:
				joined, frank = c.ID, u
			}
		}
	}
	if erin == "" || frank == "" {
		t.Fatal("no channel to leave or join")
	}
	var poster string // an active member of left who is not erin
	for u := range a.members[left] {
		if u != erin && active[u] {
			poster = u
			break
		}
	}

	var clients []*wsClient
	byUser := make(map[string]*wsClient)
	for _, u := range a.users {
		c := h.dial(team, u, "")
		clients = append(clients, c)
		byUser[u] = c
	}
	dave := h.dial(h.other, h.user(h.other, 1), "")
	start := clients[0].hello.Seq

	var evs []*origin.Event
	add := func(ev *origin.Event, err error) *origin.Event {
		t.Helper()
		evs = append(evs, h.must(ev, err))
		return ev
	}
	secret := add(h.origin.CreateChannel(ctx, team, "secret-stuff", alice, true)).Channel.ID
	add(h.origin.JoinChannel(ctx, team, secret, bob))
	secretMsg := add(h.origin.PostMessage(ctx, team, secret, alice, "psst <@"+bob+">", []string{bob}))
	leftEv := add(h.origin.LeaveChannel(ctx, team, left, erin))
	afterLeave := add(h.origin.PostMessage(ctx, team, left, poster, "she is gone", nil))
	joinedEv := add(h.origin.JoinChannel(ctx, team, joined, frank))
	afterJoin := add(h.origin.PostMessage(ctx, team, joined, frank, "hello all", nil))
	userChange := add(h.origin.UpdateUser(ctx, team, carol, func(u *origin.User) { u.Title = "Chief Tester" }))
	add(h.origin.CreateChannel(ctx, team, "open-room", carol, false))
	foreign := h.must(h.origin.UpdateUser(ctx, h.other, h.user(h.other, 2), func(u *origin.User) { u.Title = "elsewhere" }))
	marker := h.markerEvent(team)
	evs = append(evs, marker)

	waitAll(t, clients, marker.Seq)
	waitAll(t, []*wsClient{dave}, foreign.Seq)

	want := a.expected(evs, start)
	for _, c := range clients {
		checkStream(t, c, want[c.user])
	}
	checkStream(t, dave, []int64{foreign.Seq})

	// The cases the model covers, spelled out.
	got := func(u string, seq int64) bool { return byUser[u].hasSeq(seq) }
	for _, tc := range []struct {
		what string
		ok   bool
	}{
		{"bob gets the private message", got(bob, secretMsg.Seq)},
		{"carol does not", !got(carol, secretMsg.Seq)},
		{"erin gets her member_left", got(erin, leftEv.Seq)},
		{"erin does not get the next message", !got(erin, afterLeave.Seq)},
		{"frank gets his member_joined", got(frank, joinedEv.Seq)},
		{"frank gets the next message", got(frank, afterJoin.Seq)},
		{"user_change reaches alice", got(alice, userChange.Seq)},
		{"user_change reaches erin", got(erin, userChange.Seq)},
	} {
		if !tc.ok {
			t.Error(tc.what + ": no")
		}
	}
	// The event frames carry the event itself.
	for _, f := range byUser[bob].events() {
		if f.Seq == secretMsg.Seq && (f.Event == nil || f.Event.Type != origin.EventMessage ||
			f.Event.ChannelID != secret || f.Event.Text != secretMsg.Text || f.Event.Seq != secretMsg.Seq) {
			t.Errorf("bob's frame for the private message: %s", f.raw)
		}
	}
}

// TestConcurrentPublishingOrder: several goroutines change one team at once; every session
// sees strictly increasing seqs and exactly the events it may see.
func TestConcurrentPublishingOrder(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	team := h.team
	a := newAudience(h.origin, team)
	chans := h.origin.Channels(team)

	var clients []*wsClient
	for i, u := range a.users {
		clients = append(clients, h.dial(team, u, ""))
		if i%5 == 0 { // some users have two sessions
			clients = append(clients, h.dial(team, u, ""))
		}
	}
	start := clients[0].hello.Seq

	const workers, ops = 4, 60
	var (
		mu  sync.Mutex
		evs []*origin.Event
		wg  sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			ctx := context.Background()
			for i := range ops {
				u := a.users[r.IntN(len(a.users))]
				c := chans[1+r.IntN(len(chans)-1)].ID
				var ev *origin.Event
				var err error
				switch r.IntN(6) {
				case 0, 1:
					ev, err = h.origin.PostMessage(ctx, team, c, u, fmt.Sprintf("w%d m%d", w, i), nil)
				case 2:
					ev, err = h.origin.JoinChannel(ctx, team, c, u)
				case 3:
					ev, err = h.origin.LeaveChannel(ctx, team, c, u)
				case 4:
					ev, err = h.origin.UpdateUser(ctx, team, u, func(x *origin.User) { x.Title = fmt.Sprintf("w%d t%d", w, i) })
				case 5:
					ev, err = h.origin.CreateChannel(ctx, team, fmt.Sprintf("w%d-c%d", w, i), u, r.IntN(2) == 0)
				}
				if errors.Is(err, reference.ErrBadChange) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				evs = append(evs, ev)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	marker := h.markerEvent(team)
	evs = append(evs, marker)
	waitAll(t, clients, marker.Seq)

	// The published events are exactly the seqs after start: nobody else changed the team.
	seqs := make([]int64, len(evs))
	for i, ev := range evs {
		seqs[i] = ev.Seq
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != start+int64(i)+1 {
			t.Fatalf("published seqs %v do not follow %d", seqs, start)
		}
	}
	want := a.expected(evs, start)
	for _, c := range clients {
		checkStream(t, c, want[c.user])
	}
	t.Logf("%d events, %d sessions", len(evs), len(clients))
}
