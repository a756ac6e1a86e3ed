package edge

import (
	"context"
	"fmt"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// TestSlowConsumer: a client that stops reading while events flow is closed as a slow consumer
// and counted, and 1,000 other sessions of the same team keep getting every event meanwhile.
//
// The write deadline keeps its default: the stuck session must end by the slow-consumer rules
// (session.go, sendLocked) and within StallTimeout of the verdict, not by a write deadline. A
// short deadline (this test had 300 ms) also cut off reading sessions whose writer merely
// waited that long for a CPU on a busy machine (9 of 1,000 in one run under -race beside
// stress-ng).
func TestSlowConsumer(t *testing.T) {
	const good = 1000
	h := newHarness(t, harnessOpts{edge: func(c *Config) {
		c.QueueBytes = 16 << 10
		c.StallTimeout = 500 * time.Millisecond
	}})
	ctx := context.Background()
	team := h.team
	users := h.activeUsers(team)
	stuckUser, others := users[0], users[1:]
	// The flood goes to a channel only the stuck user is in; team-wide events go to everyone.
	flood := h.must(h.origin.CreateChannel(ctx, team, "flood", stuckUser, true)).Channel.ID
	stuck, _ := h.dialStuck(team, stuckUser)

	clients := make([]*wsClient, good)
	var wg sync.WaitGroup
	errs := make(chan error, good)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < good; i += 8 {
				c, err := h.tryDial(team, others[i%len(others)], "")
				if err != nil {
					errs <- err
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Flood until the stuck session passes its queue bound. Team-wide events are few enough
	// (at most ~15 × 0.5 KiB) that no reading session's queue could reach 16 KiB with them.
	var teamWide []int64
	text := strings.Repeat("flood ", 8<<10/6)
	closed := func() bool { return h.metric("weft_edge_slow_consumer_closes_total") >= 1 }
	for i := 0; !closed(); i++ {
		if i == 20000 { // ~160 MB: far past any socket buffers
			t.Fatal("the stuck session was never closed as a slow consumer")
		}
		h.must(h.origin.PostMessage(ctx, team, flood, stuckUser, text, nil))
		if i%20 == 0 && len(teamWide) < 15 {
			ev := h.must(h.origin.UpdateUser(ctx, team, others[i%len(others)], func(u *origin.User) {
				u.Title = fmt.Sprintf("title %d", i)
			}))
			teamWide = append(teamWide, ev.Seq)
		}
	}
	marker := h.markerEvent(team)
	teamWide = append(teamWide, marker.Seq)
	waitAllOr(t, clients, marker.Seq, func() {
		n := 0
		for _, c := range clients {
			if c.hasSeq(marker.Seq) {
				n++
			}
		}
		hb, _ := h.edge.hubs.Load(team)
		queued, writing := 0, 0
		for _, ss := range hb.(*hub).snapshot() {
			ss.mu.Lock()
			queued += ss.queued
			if ss.writing {
				writing++
			}
			ss.mu.Unlock()
		}
		t.Logf("%d/%d clients have seq %d; %d sessions, %d writing, %d bytes queued; store at seq %d; bus %+v",
			n, good, marker.Seq, h.edge.Sessions(), writing, queued, h.edge.Teams().Lookup(team).Store().Seq(), h.bus.Stats())
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Log(b.String())
	})

	// The stuck connection ends; nobody else was closed.
	testkit.Eventually(t, func() bool { return h.edge.Sessions() == good }, "the stuck session to end")
	rctx, cancel := context.WithTimeout(ctx, testkit.Within)
	defer cancel()
	for {
		if _, _, err := stuck.Read(rctx); err != nil {
			if rctx.Err() != nil {
				t.Fatal("the stuck connection is still open")
			}
			break
		}
	}
	if v := h.metric("weft_edge_slow_consumer_closes_total"); v != 1 {
		t.Errorf("slow consumer closes = %v, want 1", v)
	}
	bad := 0
	for _, c := range clients {
		if got := c.seqs(); !slices.Equal(got, teamWide) {
			if bad++; bad <= 3 {
				t.Errorf("%s got %v, want %v", c.user, got, teamWide)
			}
		}
		if done, err := c.ended(); done {
			t.Fatalf("a reading session ended: %v", err)
		}
	}
	t.Logf("%d team-wide events to %d sessions; bus %+v", len(teamWide), good, h.bus.Stats())
}

// newQueueTestSession is a live session whose writer is taken to be running (writing), so that
// queued frames stay queued: the slow-consumer rule is then judged on the queue alone.
func newQueueTestSession(t *testing.T, queueBytes int) *session {
	srv := &Server{cfg: Config{QueueBytes: queueBytes, StallTimeout: time.Hour, HeartbeatInterval: time.Second}}
	srv.metrics = newMetrics(prometheus.NewRegistry(), srv)
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	return &session{srv: srv, ctx: ctx, stop: stop, live: true, writing: true, progress: bucket.Now()}
}

// TestQueueOverBoundWhileWriting: a queue over QueueBytes is not a slow consumer while its
// writer makes progress; it is once the writer has finished nothing for StallTimeout (the session
// is ended at once: its writer is stuck), or when the queue passes 4 × QueueBytes.
func TestQueueOverBoundWhileWriting(t *testing.T) {
	frame := make([]byte, 100)

	s := newQueueTestSession(t, 1000)
	for i := range 39 { // 3,900 bytes: over the soft bound, under the hard cap
		if !s.send(frame) {
			t.Fatalf("frame %d refused with the writer making progress: closing %q", i, s.closing)
		}
	}
	s.progress -= int64(2 * time.Hour) // the writer has finished nothing for twice StallTimeout
	if s.send(frame) || s.closing != protocol.ReasonSlowConsumer {
		t.Fatalf("a stalled queue over the bound was not a slow consumer: closing %q", s.closing)
	}
	if s.ctx.Err() == nil {
		t.Error("a stalled slow consumer's session was not ended")
	}

	s = newQueueTestSession(t, 1000)
	for range 40 { // exactly the hard cap
		if !s.send(frame) {
			t.Fatalf("refused under the hard cap: closing %q", s.closing)
		}
	}
	if s.send(frame) || s.closing != protocol.ReasonSlowConsumer {
		t.Fatalf("a queue past the hard cap was not a slow consumer: closing %q", s.closing)
	}
	if s.ctx.Err() != nil {
		t.Error("a slow consumer that still makes progress was ended before its goodbye")
	}
	var m dto.Metric
	if err := s.srv.metrics.slowConsumers.Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		got := m.GetCounter().GetValue()
		t.Errorf("slow consumer closes = %v, want 1", got)
	}

	// Its goodbye gets StallTimeout; then the session ends even if its writer is stuck.
	s = newQueueTestSession(t, 1000)
	s.srv.cfg.StallTimeout = 10 * time.Millisecond
	for range 41 {
		s.send(frame)
	}
	testkit.Eventually(t, func() bool { return s.ctx.Err() != nil },
		"a slow consumer past the hard cap to be ended after StallTimeout")

	s = newQueueTestSession(t, 1000)
	s.progress -= int64(2 * time.Hour) // idle for long, empty queue: the wait starts when it fills
	for range 39 {
		if !s.send(frame) {
			t.Fatalf("a queue that filled from empty just now was judged stalled: closing %q", s.closing)
		}
	}
}
