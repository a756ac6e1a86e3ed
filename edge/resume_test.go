package edge

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
	"github.com/weft-edge/weft/pubsub"
)

// TestResume: a client that reconnects with since=<last seq it saw> gets exactly the visible
// events it missed, in order, then the live stream, with no duplicate and no gap, even while
// the team keeps changing during the reconnect.
func TestResume(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	team := h.team
	general := h.origin.Channels(team)[0].ID
	me, other := h.user(team, 1), h.user(team, 2)
	a := newAudience(h.origin, team)
	var evs []*origin.Event
	var mu sync.Mutex
	post := func(ev *origin.Event, err error) *origin.Event {
		ev = h.must(ev, err)
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
		return ev
	}

	c1 := h.dial(team, me, "")
	for i := range 3 {
		post(h.origin.PostMessage(ctx, team, general, other, fmt.Sprintf("before %d", i), nil))
	}
	last := evs[len(evs)-1].Seq
	testkit.Eventually(t, func() bool { return c1.hasSeq(last) }, "the first events")
	if got := c1.seqs(); !slices.Equal(got, []int64{last - 2, last - 1, last}) {
		t.Fatalf("first connection got %v", got)
	}
	c1.close()

	// Missed: visible and invisible events.
	post(h.origin.PostMessage(ctx, team, general, other, "missed 1", nil))
	secret := post(h.origin.CreateChannel(ctx, team, "not-for-me", other, true)).Channel.ID
	post(h.origin.PostMessage(ctx, team, secret, other, "hidden", nil))
	post(h.origin.UpdateUser(ctx, team, other, func(u *origin.User) { u.Title = "Resumer" }))
	post(h.origin.PostMessage(ctx, team, general, other, "missed 2", nil))

	// More events race the reconnect: each must come either from the replay or live, once.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			ch := general
			if i%3 == 0 {
				ch = secret
			}
			post(h.origin.PostMessage(ctx, team, ch, other, fmt.Sprintf("during %d", i), nil))
		}
	}()
	c2 := h.dial(team, me, fmt.Sprintf("since=%d", last))
	wg.Wait()
	marker := post(h.markerEvent(team), nil)
	testkit.Eventually(t, func() bool { return c2.hasSeq(marker.Seq) }, "the marker")

	if !c2.hello.Resumed || c2.hello.Seq != last {
		t.Errorf("hello = %+v, want resumed at %d", c2.hello, last)
	}
	checkStream(t, c2, a.expected(evs, last)[me])
	if h.metric(`weft_edge_resumes_total{resumed="true"}`) != 1 {
		t.Errorf("resumes metric: %v", h.metric(`weft_edge_resumes_total{resumed="true"}`))
	}
}

// TestResumeRefused: the stream path (no recent events in memory): what the stream no longer
// holds, or a client ahead of the node, is refused.
func TestResumeRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{stream: pubsub.StreamConfig{MaxMsgsPerSubject: 5},
		edge: func(c *Config) { c.RecentEvents = -1 }})
	ctx := context.Background()
	team := h.team
	general := h.origin.Channels(team)[0].ID
	me, other := h.user(team, 1), h.user(team, 2)
	h.dial(team, me, "") // loads the team
	var last *origin.Event
	for i := range 12 {
		last = h.must(h.origin.PostMessage(ctx, team, general, other, fmt.Sprintf("m%d", i), nil))
	}
	h.applied(team, last.Seq)
	now := last.Seq

	for _, tc := range []struct {
		what    string
		since   func(now int64) int64
		resumed bool
		missed  int // events replayed, the last ones before now
	}{
		{"the stream keeps the last 5 only", func(int64) int64 { return 1 }, false, 0},
		{"ahead of the node", func(now int64) int64 { return now + 100 }, false, 0},
		{"still stored", func(now int64) int64 { return now - 3 }, true, 3},
		{"nothing missed", func(now int64) int64 { return now }, true, 0},
	} {
		since := tc.since(now)
		c := h.dial(team, me, fmt.Sprintf("since=%d", since))
		wantSeq := now
		if tc.resumed {
			wantSeq = since
		}
		if c.hello.Resumed != tc.resumed || c.hello.Seq != wantSeq {
			t.Errorf("%s: since=%d: hello %+v, want resumed %v at %d", tc.what, since, c.hello, tc.resumed, wantSeq)
		}
		var want []int64
		for s := now - int64(tc.missed) + 1; s <= now; s++ {
			want = append(want, s)
		}
		// Live events follow, whatever the answer was.
		live := h.must(h.origin.PostMessage(ctx, team, general, other, "live", nil))
		testkit.Eventually(t, func() bool { return c.hasSeq(live.Seq) }, "a live event")
		checkStream(t, c, append(want, live.Seq))
		c.close()
		now = live.Seq
	}

	for _, bad := range []string{"since=-1", "since=abc", "since=1.5"} {
		_, resp, err := h.dialRaw(h.token(team, me), bad)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: err %v, response %v", bad, err, resp)
		}
	}
}

// TestResumeLongerThanQueue: a resume whose replay alone is bigger than QueueBytes is not a
// slow consumer: the client reads it all, and live events arriving meanwhile, in order.
func TestResumeLongerThanQueue(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.QueueBytes = 16 << 10 }})
	ctx := context.Background()
	team := h.team
	general := h.origin.Channels(team)[0].ID
	me, other := h.user(team, 1), h.user(team, 2)
	c1 := h.dial(team, me, "")
	since := c1.hello.Seq
	c1.close()
	var evs []*origin.Event
	const missed = 600
	for i := range missed { // ~300 B each: 180 KB of replay
		evs = append(evs, h.must(h.origin.PostMessage(ctx, team, general, other, fmt.Sprintf("missed %d", i), nil)))
	}
	h.applied(team, evs[len(evs)-1].Seq)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(1)
	go func() { // live events all along the replay, at a pace a reading client keeps up with
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 500; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ev := h.must(h.origin.PostMessage(ctx, team, general, other, fmt.Sprintf("live %d", i), nil))
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
		}
	}()
	c2 := h.dial(team, me, fmt.Sprintf("since=%d", since))
	testkit.Eventually(t, func() bool {
		done, _ := c2.ended()
		return done || len(c2.seqs()) >= missed+20
	}, "the replay and some live events")
	close(stop)
	wg.Wait()
	marker := h.markerEvent(team)
	evs = append(evs, marker)
	testkit.Eventually(t, func() bool { done, _ := c2.ended(); return done || c2.hasSeq(marker.Seq) }, "the marker")
	if done, err := c2.ended(); done {
		t.Fatalf("the resumed connection was closed: %v; last frame %s", err, c2.all()[len(c2.all())-1].raw)
	}
	if !c2.hello.Resumed {
		t.Fatalf("hello %+v", c2.hello)
	}
	var want []int64
	for _, ev := range evs {
		want = append(want, ev.Seq)
	}
	checkStream(t, c2, want)
}

// TestResumeAcrossMembershipChanges: the replay judges each missed event by the membership the
// caller had when it happened, as the live stream would have: messages before a leave are
// replayed, messages of a private channel from before the caller joined are not.
func TestResumeAcrossMembershipChanges(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	team := h.team
	a := newAudience(h.origin, team)
	var me, other, left string // two active users and a channel both are in, but #general
	active := h.activeUsers(team)
	for _, c := range h.origin.Channels(team)[1:] {
		for _, u := range active {
			for _, v := range active {
				if left == "" && u != v && a.members[c.ID][u] && a.members[c.ID][v] {
					me, other, left = u, v, c.ID
				}
			}
		}
	}
	if left == "" {
		t.Fatal("no channel to leave")
	}
	secret := h.must(h.origin.CreateChannel(ctx, team, "later-room", other, true))
	c1 := h.dial(team, me, "")
	since := c1.hello.Seq
	c1.close()

	evs := []*origin.Event{secret}
	add := func(ev *origin.Event, err error) { evs = append(evs, h.must(ev, err)) }
	add(h.origin.PostMessage(ctx, team, left, other, "before you go", nil))
	add(h.origin.LeaveChannel(ctx, team, left, me))
	add(h.origin.PostMessage(ctx, team, left, other, "after you left", nil))
	add(h.origin.PostMessage(ctx, team, secret.Channel.ID, other, "before you came", nil))
	add(h.origin.JoinChannel(ctx, team, secret.Channel.ID, me))
	add(h.origin.PostMessage(ctx, team, secret.Channel.ID, other, "welcome", nil))
	marker := h.markerEvent(team)
	evs = append(evs, marker)
	h.applied(team, marker.Seq)

	c2 := h.dial(team, me, fmt.Sprintf("since=%d", since))
	testkit.Eventually(t, func() bool { return c2.hasSeq(marker.Seq) }, "the marker")
	if !c2.hello.Resumed {
		t.Fatalf("hello %+v", c2.hello)
	}
	checkStream(t, c2, a.expected(evs, since)[me])
}

// TestReloadSendsSessionsToResume: when a team's feed loses events the stream no longer holds,
// the cache reloads the team and the edge tells its sessions goodbye draining; reconnecting
// with since answers resumed:false (the events are gone), so the client knows to boot again.
func TestReloadSendsSessionsToResume(t *testing.T) {
	block := make(chan struct{})
	var blocked atomic.Bool
	h := newHarness(t, harnessOpts{pending: 2, stream: pubsub.StreamConfig{MaxMsgsPerSubject: 3, Memory: true},
		edge: func(c *Config) {
			// The user hook runs on the team's feed goroutine after the edge's: holding it makes
			// NATS drop what overflows the tiny pending limit.
			c.Cache.Hooks.OnEvent = func(*cache.Team, *origin.Event, cache.Change) {
				if blocked.Load() {
					<-block
				}
			}
		}})
	ctx := context.Background()
	team, me := h.team, h.user(h.team, 1)
	c := h.dial(team, me, "")
	blocked.Store(true)
	for i := range 30 { // far more than the stream keeps for the team
		h.must(h.origin.UpdateUser(ctx, team, h.user(team, 2), func(u *origin.User) { u.Title = fmt.Sprint("t", i) }))
	}
	blocked.Store(false)
	close(block)
	bye := c.waitFrame("goodbye after the reload", func(f frame) bool { return f.Type == "goodbye" })
	if bye.Reason != protocol.ReasonDraining || bye.ReconnectAfterMS <= 0 {
		t.Fatalf("goodbye %+v, want draining with a reconnect time", bye)
	}
	// Another reload can follow (the new subscription, with its tiny pending limit, can lose
	// events too): a session set up meanwhile is told goodbye draining, before its hello or
	// after it, and does what a client does, dials again. Each reload needs lost events, so
	// they end.
	for attempt := 1; ; attempt++ {
		again, err := h.tryDial(team, me, fmt.Sprintf("since=%d", c.hello.Seq))
		if err != nil && attempt < 5 && strings.Contains(err.Error(), `{"type":"goodbye","reason":"draining"`) {
			t.Logf("dial %d: told to come back by a later reload", attempt)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if again.hello.Resumed {
			t.Fatalf("resumed across events the stream lost: %+v", again.hello)
		}
		// The reload may have happened while events were still arriving, so the new hello may
		// start anywhere from the reload's snapshot on; what must hold is that nothing between
		// the hello and the live stream is missing (before the fix the hello said the
		// pre-reload seq and the events the reload absorbed never came).
		last := h.origin.Seq(team)
		if again.hello.Seq <= c.hello.Seq || again.hello.Seq > last {
			t.Fatalf("hello seq %d after a reload; before it %d, the origin at %d", again.hello.Seq, c.hello.Seq, last)
		}
		var want []int64
		for seq := again.hello.Seq + 1; seq <= last; seq++ {
			want = append(want, seq)
		}
		toldAgain := func() bool {
			for _, f := range again.all() {
				if f.Type == "goodbye" && f.Reason == protocol.ReasonDraining {
					return true
				}
			}
			return false
		}
		if len(want) > 0 {
			testkit.EventuallyOr(t, testkit.Within, func() bool { return again.hasSeq(last) || toldAgain() }, "the events after the hello", func() {
				ended, err := again.ended()
				frames := again.all()
				var tail []string
				for _, f := range frames[max(len(frames)-3, 0):] {
					tail = append(tail, fmt.Sprintf("%s seq %d %s", f.Type, f.Seq, f.Reason))
				}
				t.Logf("hello seq %d, origin at %d; ended %v (%v); %d frames, the last: %v; sessions ended: %v",
					again.hello.Seq, last, ended, err, len(frames), tail, h.endedAll())
			})
		}
		if !again.hasSeq(last) && toldAgain() && attempt < 5 {
			t.Logf("dial %d: told to come back by a later reload after its hello", attempt)
			continue
		}
		checkStream(t, again, want)
		return
	}
}

// TestResumeFromMemory: the node keeps the team's recent events, so a resume further back than
// the stream still holds is served from memory; one further back than memory and stream
// together is refused. Concurrent resumes of one team share one stream read.
func TestResumeFromMemory(t *testing.T) {
	h := newHarness(t, harnessOpts{stream: pubsub.StreamConfig{MaxMsgsPerSubject: 5},
		edge: func(c *Config) { c.RecentEvents = 8 }})
	ctx := context.Background()
	team := h.team
	general := h.origin.Channels(team)[0].ID
	me, other := h.user(team, 1), h.user(team, 2)
	first := h.dial(team, me, "") // loads the team; its hub sees every event from here
	start := first.hello.Seq
	var last *origin.Event
	for i := range 20 { // memory keeps 8 to 15 of them: the last 12 here
		last = h.must(h.origin.PostMessage(ctx, team, general, other, fmt.Sprintf("m%d", i), nil))
	}
	h.applied(team, last.Seq)
	testkit.Eventually(t, func() bool { return first.hasSeq(last.Seq) }, "the live session to see every event")

	// 7 back: older than the stream's 5, within memory's 8.
	c := h.dial(team, me, fmt.Sprintf("since=%d", last.Seq-7))
	if !c.hello.Resumed {
		t.Fatalf("7 events back with 8 in memory: hello %+v", c.hello)
	}
	var want []int64
	for s := last.Seq - 6; s <= last.Seq; s++ {
		want = append(want, s)
	}
	testkit.Eventually(t, func() bool { return c.hasSeq(last.Seq) }, "the replay")
	checkStream(t, c, want)
	if h.metric(`weft_edge_resume_replays_total{source="memory"}`) < 1 {
		t.Fatal("the replay did not come from memory")
	}
	// 20 back: neither memory (the last 12) nor the stream (the last 5) holds it all.
	old := h.dial(team, me, fmt.Sprintf("since=%d", start))
	if old.hello.Resumed {
		t.Fatalf("20 events back with 12 in memory and 5 in the stream: resumed")
	}
}
