package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

func TestPublishSubscribeManyTeams(t *testing.T) {
	_, b := newBus(t, Config{})
	const teams, perTeam = 8, 200
	recs := make([]*recorder, teams)
	for i := range teams {
		team := fmt.Sprintf("T%02d", i)
		recs[i] = newRecorder(t, team)
		subscribe(t, b, team, recs[i]).Start(0)
	}
	var wg sync.WaitGroup
	errs := make(chan error, teams)
	for i := range teams {
		wg.Go(func() {
			team := fmt.Sprintf("T%02d", i)
			for seq := int64(1); seq <= perTeam; seq++ {
				if err := b.PublishEvent(context.Background(), event(team, seq)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		testkit.OK(t, err)
	}
	for i, r := range recs {
		testkit.Eventually(t, func() bool { return r.count() >= perTeam }, fmt.Sprintf("team %d's events", i))
		testkit.Equal(t, r.got(), seqRange(1, perTeam), "delivered seqs")
	}
	st := b.Stats()
	testkit.Equal(t, st.Published, uint64(teams*perTeam), "published")
	testkit.Equal(t, st.Delivered, uint64(teams*perTeam), "delivered")
	testkit.Equal(t, st.Subscriptions, int64(teams), "subscriptions")
}

func TestBufferedBeforeStartAndAfterSeqDropped(t *testing.T) {
	_, b := newBus(t, Config{GapCheckInterval: time.Hour})
	r := newRecorder(t, "T1")
	s := subscribe(t, b, "T1", r)
	publish(t, b, "T1", 1, 10)
	testkit.Eventually(t, func() bool { return len(s.msgs) == 10 }, "10 buffered messages")
	testkit.Equal(t, r.count(), 0, "events before Start")

	s.Start(5)
	testkit.Eventually(t, func() bool { return r.count() >= 5 }, "events 6..10")
	publish(t, b, "T1", 11, 12)
	testkit.Eventually(t, func() bool { return r.count() >= 7 }, "events 11..12")
	testkit.Equal(t, r.got(), seqRange(6, 12), "delivered seqs")
	st := b.Stats()
	testkit.Equal(t, st.Duplicates, uint64(5), "dropped at or below afterSeq")
	testkit.Equal(t, st.Filled, uint64(0), "filled")
}

func TestStartFillsFromStream(t *testing.T) {
	_, b := newBus(t, Config{GapCheckInterval: time.Hour})
	publish(t, b, "T1", 1, 20) // before the subscription: only the stream has them
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(12)
	testkit.Eventually(t, func() bool { return r.count() >= 8 }, "events 13..20")
	publish(t, b, "T1", 21, 21)
	testkit.Eventually(t, func() bool { return r.count() >= 9 }, "event 21")
	testkit.Equal(t, r.got(), seqRange(13, 21), "delivered seqs")
	testkit.Equal(t, b.Stats().Filled, uint64(8), "filled")
}

func TestSlowConsumerGapIsFilled(t *testing.T) {
	_, b := newBus(t, Config{SubPendingMsgs: 4, GapCheckInterval: time.Hour})
	r := newRecorder(t, "T1")
	r.gate = make(chan struct{})
	s := subscribe(t, b, "T1", r)
	s.Start(0)
	publish(t, b, "T1", 1, 60)
	// Event 1 is held in the handler, 4 more wait in the buffer, NATS drops the rest.
	testkit.Eventually(t, func() bool { n, _ := s.sub.Dropped(); return n > 0 }, "a slow-consumer drop")
	close(r.gate)
	publish(t, b, "T1", 61, 61) // the next live event reveals the gap
	testkit.Eventually(t, func() bool { return r.count() >= 61 }, "61 events")
	testkit.Equal(t, r.got(), seqRange(1, 61), "delivered seqs")
	st := b.Stats()
	testkit.True(t, st.Gaps >= 1 && st.Filled >= 1, "gaps %d, filled %d", st.Gaps, st.Filled)
	testkit.True(t, st.SlowConsumers >= 1, "slow consumers %d", st.SlowConsumers)
	testkit.Equal(t, st.Delivered, uint64(61), "delivered")
	testkit.Equal(t, st.Lost, uint64(0), "lost")
}

func TestIdleTailCheck(t *testing.T) {
	_, b := newBus(t, Config{SubPendingMsgs: 2, GapCheckInterval: 50 * time.Millisecond})
	r := newRecorder(t, "T1")
	r.gate = make(chan struct{})
	s := subscribe(t, b, "T1", r)
	s.Start(0)
	publish(t, b, "T1", 1, 30)
	testkit.Eventually(t, func() bool { n, _ := s.sub.Dropped(); return n > 0 }, "a slow-consumer drop")
	close(r.gate)
	// No further event: the idle check must find the dropped tail.
	testkit.Eventually(t, func() bool { return r.count() >= 30 }, "30 events")
	testkit.Equal(t, r.got(), seqRange(1, 30), "delivered seqs")
}

func TestRestartFillsTailAfterReconnect(t *testing.T) {
	dir := t.TempDir()
	e1, err := NewEmbedded(EmbeddedConfig{StoreDir: dir})
	testkit.OK(t, err)
	testkit.OK(t, e1.Start())
	t.Cleanup(e1.Shutdown)
	port := e1.Port()
	testkit.True(t, port > 0, "port %d", port)

	// The subscriber's reconnect waits for release, so that the events published after the
	// restart are certainly missed live.
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	sub := connect(t, Config{
		Embedded:         e1,
		GapCheckInterval: time.Hour, // only the reconnect may trigger the check
		reconnectDelay: func(int) time.Duration {
			<-release
			return time.Millisecond
		},
	})
	t.Cleanup(free) // runs before sub.Close
	r := newRecorder(t, "T1")
	subscribe(t, sub, "T1", r).Start(0)
	publish(t, sub, "T1", 1, 5)
	testkit.Eventually(t, func() bool { return r.count() >= 5 }, "events 1..5")

	filledBefore := sub.Stats().Filled
	e1.Shutdown()
	e2 := startEmbedded(t, EmbeddedConfig{StoreDir: dir, Port: port})
	pub := connect(t, Config{URL: e2.ClientURL()})
	last, err := pub.LastSeq(context.Background(), "T1")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(5), "last seq kept across the restart")
	publish(t, pub, "T1", 6, 10)
	testkit.Equal(t, r.count(), 5, "events while the subscriber is away")

	free()
	testkit.Eventually(t, func() bool { return r.count() >= 10 }, "events 6..10 after the reconnect")
	testkit.Equal(t, r.got(), seqRange(1, 10), "delivered seqs")
	st := sub.Stats()
	testkit.Equal(t, st.Reconnects, uint64(1), "reconnects")
	testkit.Equal(t, st.Filled-filledBefore, uint64(5), "filled after the reconnect")

	publish(t, pub, "T1", 11, 11) // and live delivery resumed
	testkit.Eventually(t, func() bool { return r.count() >= 11 }, "event 11")
	testkit.Equal(t, r.got(), seqRange(1, 11), "delivered seqs")
}

func TestLostWhenStreamNoLongerHoldsGap(t *testing.T) {
	_, b := newBus(t, Config{Stream: StreamConfig{MaxMsgsPerSubject: 5}, GapCheckInterval: time.Hour})
	publish(t, b, "T1", 1, 20) // the stream keeps 16..20
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(3)
	testkit.Eventually(t, func() bool { return len(r.losses()) > 0 }, "Lost")
	testkit.IsErr(t, r.losses()[0], ErrGapUnfillable)

	// Nothing more reaches the lost subscription; a control subscription proves the event went out.
	ctl := newRecorder(t, "T1")
	subscribe(t, b, "T1", ctl).Start(20)
	publish(t, b, "T1", 21, 22)
	testkit.Eventually(t, func() bool { return ctl.count() >= 2 }, "control events")
	testkit.Equal(t, r.count(), 0, "events after Lost")
	testkit.Equal(t, len(r.losses()), 1, "Lost calls")
	testkit.Equal(t, b.Stats().Lost, uint64(1), "lost")
}

func TestLostMidStream(t *testing.T) {
	_, b := newBus(t, Config{Stream: StreamConfig{MaxMsgsPerSubject: 5}, SubPendingMsgs: 2, GapCheckInterval: time.Hour})
	r := newRecorder(t, "T1")
	r.gate = make(chan struct{}, 100)
	r.gate <- struct{}{}
	s := subscribe(t, b, "T1", r)
	s.Start(0)
	publish(t, b, "T1", 1, 1)
	testkit.Eventually(t, func() bool { return r.count() == 1 }, "event 1")
	publish(t, b, "T1", 2, 30) // handler held at 2, 2 buffered, the rest dropped; stream keeps 26..30
	testkit.Eventually(t, func() bool { n, _ := s.sub.Dropped(); return n > 0 }, "a slow-consumer drop")
	for range 100 - 1 {
		r.gate <- struct{}{}
	}
	publish(t, b, "T1", 31, 31)
	testkit.Eventually(t, func() bool { return len(r.losses()) > 0 }, "Lost")
	testkit.IsErr(t, r.losses()[0], ErrGapUnfillable)
	publish(t, b, "T1", 32, 32)
	ctl := newRecorder(t, "T1")
	subscribe(t, b, "T1", ctl).Start(31)
	publish(t, b, "T1", 33, 33)
	testkit.Eventually(t, func() bool { return ctl.count() >= 1 }, "control event")
	got := r.got()
	testkit.Equal(t, got, seqRange(1, int64(len(got))), "delivered before Lost")
	testkit.True(t, len(got) >= 3 && len(got) < 26, "delivered %v before Lost", got)
	testkit.Equal(t, len(r.losses()), 1, "Lost calls")
}

func TestDuplicateCoreMessageDeliveredOnce(t *testing.T) {
	_, b := newBus(t, Config{GapCheckInterval: time.Hour})
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(0)
	publish(t, b, "T1", 1, 1)
	data, err := json.Marshal(event("T1", 2))
	testkit.OK(t, err)
	// Plain core NATS publishes, without Nats-Msg-Id: JetStream cannot drop the second.
	testkit.OK(t, b.nc.Publish(origin.Subject("T1"), data))
	testkit.OK(t, b.nc.Publish(origin.Subject("T1"), data))
	testkit.OK(t, b.nc.Flush())
	publish(t, b, "T1", 3, 3)
	testkit.Eventually(t, func() bool { return r.count() >= 3 }, "3 events")
	publish(t, b, "T1", 4, 4)
	testkit.Eventually(t, func() bool { return r.count() >= 4 }, "4 events")
	testkit.Equal(t, r.got(), seqRange(1, 4), "delivered seqs")
	testkit.True(t, b.Stats().Duplicates >= 1, "duplicates %d", b.Stats().Duplicates)

	// The stream holds the duplicate too; a replay skips it.
	var replayed []int64
	testkit.OK(t, b.Replay(context.Background(), "T1", 0, 0, func(ev *origin.Event) error {
		replayed = append(replayed, ev.Seq)
		return nil
	}))

	testkit.Equal(t, replayed, seqRange(1, 4), "replayed seqs")
}

func TestBadAndForeignMessagesSkipped(t *testing.T) {
	_, b := newBus(t, Config{GapCheckInterval: time.Hour})
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(0)
	publish(t, b, "T1", 1, 1)
	foreign, err := json.Marshal(event("T2", 2))
	testkit.OK(t, err)
	testkit.OK(t, b.nc.Publish(origin.Subject("T1"), []byte("{not json")))
	testkit.OK(t, b.nc.Publish(origin.Subject("T1"), foreign))
	testkit.OK(t, b.nc.Publish(origin.Subject("T1"), []byte(`{"team":"T1","seq":2}`))) // no type
	publish(t, b, "T1", 2, 3)
	testkit.Eventually(t, func() bool { return r.count() >= 3 }, "3 events")
	testkit.Equal(t, r.got(), seqRange(1, 3), "delivered seqs")
	st := b.Stats()
	testkit.True(t, st.BadMessages >= 3, "bad messages %d", st.BadMessages)
}

func TestCloseFromHandler(t *testing.T) {
	_, b := newBus(t, Config{})
	var s *TeamSub
	var mu sync.Mutex
	var seqs []int64
	h := HandlerFuncs{OnEvent: func(ev *origin.Event) {
		mu.Lock()
		seqs = append(seqs, ev.Seq)
		mu.Unlock()
		if ev.Seq == 2 {
			s.Stop() // from the Handler: must not deadlock
		}
	}}
	var err error
	s, err = b.SubscribeTeam("T1", h)
	testkit.OK(t, err)
	s.Start(0)
	publish(t, b, "T1", 1, 5)
	testkit.Eventually(t, func() bool { return b.Stats().Subscriptions == 0 }, "the subscription to close")
	s.Close() // idempotent, and waits for the delivery goroutine
	mu.Lock()
	defer mu.Unlock()
	testkit.Equal(t, seqs, []int64{1, 2}, "delivered seqs")
}

func TestCloseBeforeStart(t *testing.T) {
	_, b := newBus(t, Config{})
	s, err := b.SubscribeTeam("T1", newRecorder(t, "T1"))
	testkit.OK(t, err)
	s.Close()
	s.Close()
	s.Start(0) // harmless after Close
	testkit.Equal(t, b.Stats().Subscriptions, int64(0), "subscriptions")
}

func TestSubscribeInvalid(t *testing.T) {
	_, b := newBus(t, Config{})
	for _, team := range []string{"", "T.1", "T*", "T>", "T 1"} {
		_, err := b.SubscribeTeam(team, newRecorder(t, team))
		testkit.True(t, err != nil, "team %q accepted", team)
	}
	_, err := b.SubscribeTeam("T1", nil)
	testkit.True(t, err != nil, "nil handler accepted")
	b.Close()
	_, err = b.SubscribeTeam("T1", newRecorder(t, "T1"))
	testkit.IsErr(t, err, ErrClosed)
}

// restartable is an embedded server on a fixed store and port that a test can stop and start.
type restartable struct {
	tb   testing.TB
	dir  string
	port int
	cur  *Embedded
}

func newRestartable(tb testing.TB) *restartable {
	r := &restartable{tb: tb, dir: tb.TempDir()}
	r.start()
	r.port = r.cur.Port()
	tb.Cleanup(func() { r.cur.Shutdown() })
	return r
}

func (r *restartable) start() {
	e, err := NewEmbedded(EmbeddedConfig{StoreDir: r.dir, Port: r.port})
	testkit.OK(r.tb, err)
	testkit.OK(r.tb, e.Start())
	r.cur = e
}

func (r *restartable) restart() {
	r.cur.Shutdown()
	r.start()
}

// heldReconnect returns a reconnect delay that waits for release, and release itself.
func heldReconnect(tb testing.TB) (func(int) time.Duration, func()) {
	ch := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	tb.Cleanup(release)
	return func(int) time.Duration { <-ch; return time.Millisecond }, release
}

func TestFillRetriesWhileDisconnected(t *testing.T) {
	srv := newRestartable(t)
	delay, release := heldReconnect(t)
	b := connect(t, Config{Embedded: srv.cur, SubPendingMsgs: 2, GapCheckInterval: 20 * time.Millisecond,
		RequestTimeout: 100 * time.Millisecond, reconnectDelay: delay})
	r := newRecorder(t, "T1")
	r.gate = make(chan struct{})
	s := subscribe(t, b, "T1", r)
	s.Start(0)
	publish(t, b, "T1", 1, 20)
	testkit.Eventually(t, func() bool { n, _ := s.sub.Dropped(); return n > 0 }, "a slow-consumer drop")

	srv.cur.Shutdown() // the stream is out of reach while the handler catches up
	close(r.gate)
	testkit.Eventually(t, func() bool { return b.Stats().FillRetries > 0 }, "a failed fill attempt")
	srv.start()
	release()
	testkit.Eventually(t, func() bool { return r.count() >= 20 }, "20 events")
	testkit.Equal(t, r.got(), seqRange(1, 20), "delivered seqs")
	testkit.Equal(t, len(r.losses()), 0, "Lost calls")
}

func TestMemoryStreamRecreatedAfterRestart(t *testing.T) {
	srv := newRestartable(t)
	delay, release := heldReconnect(t)
	b := connect(t, Config{Embedded: srv.cur, Stream: StreamConfig{Memory: true}, GapCheckInterval: time.Hour,
		reconnectDelay: delay})
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(0)
	publish(t, b, "T1", 1, 3)
	testkit.Eventually(t, func() bool { return r.count() >= 3 }, "3 events")

	srv.restart() // a memory stream does not survive it
	release()
	testkit.Eventually(t, func() bool { return b.Stats().Reconnects == 1 }, "the reconnect")
	// Until the stream is back a publish is not acknowledged: the subscription's interest
	// keeps NATS from answering "no responders", so it would wait for its timeout.
	testkit.Eventually(t, func() bool {
		_, err := b.js.Stream(context.Background(), StreamName)
		return err == nil
	}, "the stream to be re-created")

	publish(t, b, "T1", 4, 4)
	testkit.Eventually(t, func() bool { return r.count() >= 4 }, "event 4")
	testkit.Equal(t, r.got(), seqRange(1, 4), "delivered seqs")
	last, err := b.LastSeq(context.Background(), "T1")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(4), "last seq in the new stream")
}
