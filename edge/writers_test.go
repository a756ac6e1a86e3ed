package edge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// TestPoolWritesAfterADirectReply: a reply written by the session's reader (waiting for the
// client, under a write deadline) leaves no deadline behind for the pool's writes, which the
// socket's deadline governs too. Once WriteTimeout has passed since the reply, events and
// replies still reach the client and the session lives on. (A stale deadline ended every
// session that had answered a request WriteTimeout earlier as write_timeout.)
func TestPoolWritesAfterADirectReply(t *testing.T) {
	const timeout = 100 * time.Millisecond
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.WriteTimeout = timeout }})
	c := h.dial(h.team, h.user(h.team, 1), "")
	c.request("ping", nil) // written by the reader, under a deadline of now + timeout
	replied := time.Now()
	// The behaviour under test is a deadline passing: wait for that, not for an event.
	testkit.Eventually(t, func() bool { return time.Since(replied) > 3*timeout }, "the reply's write deadline to pass")
	for i := range 3 {
		ev := h.must(h.origin.UpdateUser(context.Background(), h.team, h.user(h.team, 2), func(u *origin.User) {
			u.Title = fmt.Sprint("after the deadline ", i)
		}))
		testkit.Eventually(t, func() bool { return c.hasSeq(ev.Seq) }, fmt.Sprintf("event %d", ev.Seq))
	}
	c.request("ping", nil)
	if done, err := c.ended(); done {
		t.Fatalf("the session ended: %v (ended: %v)", err, h.endedAll())
	}
	h.checkEnded(map[endReason]float64{})
}

// TestWithoutWriterPool: with Writers < 0 each session's writes run on a goroutine of its
// own (the design before the pool, kept to measure against); events and replies still arrive
// in order.
func TestWithoutWriterPool(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.Writers = -1 }})
	c := h.dial(h.team, h.user(h.team, 1), "")
	var seqs []int64
	for i := range 20 {
		ev := h.must(h.origin.UpdateUser(context.Background(), h.team, h.user(h.team, 2), func(u *origin.User) {
			u.Title = fmt.Sprint("no pool ", i)
		}))
		seqs = append(seqs, ev.Seq)
	}
	c.request("ping", nil)
	testkit.Eventually(t, func() bool { return c.hasSeq(seqs[len(seqs)-1]) }, "the last event")
	got := c.seqs()
	testkit.Equal(t, fmt.Sprint(got[len(got)-len(seqs):]), fmt.Sprint(seqs), "events in order")
}

// TestCloseFrameAfterTheTurnUnderWay: a client's frame over the hard limit ends the session
// with close 1009 even while a turn is writing to it (here one held up by the connection):
// the close frame goes after the turn, and is not lost to a reset. (The reader found a chain
// under way and closed without a frame: the client saw "connection reset", once, under load.)
func TestCloseFrameAfterTheTurnUnderWay(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.MaxFrameBytes = 1 << 10 }})
	s := newStallServer(t, h)
	user := h.user(h.team, 1)
	conn := s.dial(h.token(h.team, user))
	sess := h.sessionOf(h.team, user)
	s.hold.Store(true)
	h.must(h.origin.UpdateUser(context.Background(), h.team, h.user(h.team, 2), func(u *origin.User) { u.Title = "held" }))
	testkit.Eventually(t, func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.writing && len(sess.queue) == 0
	}, "the event's turn under way, held")
	if err := conn.Write(context.Background(), websocket.MessageText, make([]byte, 20<<10)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.closing == "closed"
	}, "the reader to close the session")
	s.releaseHold()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Within)
	defer cancel()
	var err error
	for err == nil {
		_, _, err = conn.Read(ctx)
	}
	testkit.Equal(t, websocket.CloseStatus(err), websocket.StatusMessageTooBig, fmt.Sprintf("the close (%v)", err))
	h.waitEnded(endTooLarge, 1)
}
