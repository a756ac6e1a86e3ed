package pubsub

import (
	"context"
	"sync"
	"time"

	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/testkit"
)

// A team follows no feed from the moment NATS is lost until its subscription caught up from
// the stream after NATS returned; what it missed meanwhile is filled before anything newer.
func TestFeedStatusThroughOutage(t *testing.T) {
	srv := newRestartable(t)
	delay, release := heldReconnect(t)
	b := connect(t, Config{Embedded: srv.cur, GapCheckInterval: time.Hour, reconnectDelay: delay})
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(0)
	publish(t, b, "T1", 1, 5)
	testkit.Eventually(t, func() bool { return r.count() >= 5 }, "events 1..5")
	testkit.Eventually(t, func() bool { return b.FeedStatus() == FeedStatus{Subscriptions: 1} }, "one subscription following its feed")

	srv.restart() // the subscriber's reconnect is held: it stays away while events are published
	testkit.Eventually(t, func() bool { return !b.Connected() && b.FeedStatus().WithoutFeed == 1 }, "the team following no feed")
	pub := connect(t, Config{URL: srv.cur.ClientURL()})
	publish(t, pub, "T1", 6, 10)
	testkit.Equal(t, b.FeedStatus().WithoutFeed, 1, "teams without feed while still away")

	before := b.Stats()
	release()
	testkit.Eventually(t, func() bool { return r.count() >= 10 }, "events 6..10 after the reconnect")
	testkit.Eventually(t, func() bool { return b.Connected() && b.FeedStatus().WithoutFeed == 0 }, "the team following its feed again")
	testkit.Equal(t, r.got(), seqRange(1, 10), "delivered seqs: the missed ones once, in order")
	st := b.Stats()
	testkit.Equal(t, st.Filled-before.Filled, uint64(5), "events fetched from the stream")
	testkit.True(t, st.GapsFilled > before.GapsFilled, "gaps filled %d → %d", before.GapsFilled, st.GapsFilled)
	testkit.Equal(t, b.FeedStatus().LagMax, int64(0), "lag after catching up")
}

// The lag counts events a subscription has heard of and not applied: one held in the handler.
func TestFeedLag(t *testing.T) {
	_, b := newBus(t, Config{GapCheckInterval: time.Hour})
	r := newRecorder(t, "T1")
	r.gate = make(chan struct{})
	subscribe(t, b, "T1", r).Start(0)
	var release sync.Once
	open := func() { release.Do(func() { close(r.gate) }) }
	t.Cleanup(open) // before the subscription's Close, which waits for the held handler
	publish(t, b, "T1", 1, 1)
	testkit.Eventually(t, func() bool { return b.FeedStatus().LagMax == 1 }, "lag 1 while event 1 is held")
	testkit.Equal(t, b.FeedStatus().LagSum, int64(1), "lag sum")
	open()
	testkit.Eventually(t, func() bool { return r.count() == 1 && b.FeedStatus().LagMax == 0 }, "lag 0 once applied")
}

func TestCollectorExportsFeed(t *testing.T) {
	_, b := newBus(t, Config{})
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(0)
	publish(t, b, "T1", 1, 3)
	testkit.Eventually(t, func() bool { return r.count() == 3 }, "3 events")
	reg := prometheus.NewRegistry()
	testkit.OK(t, reg.Register(b.Collector()))
	mfs, err := reg.Gather()
	testkit.OK(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			got[mf.GetName()] = c.GetValue()
		} else {
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"weft_feed_events_published_total": 3,
		"weft_feed_events_delivered_total": 3,
		"weft_feed_subscriptions":          1,
		"weft_feed_teams_without_feed":     0,
		"weft_feed_gaps_unfillable_total":  0,
		"weft_feed_lag_max":                0,
	} {
		v, ok := got[name]
		testkit.True(t, ok, "metric %s missing (have %v)", name, got)
		testkit.Equal(t, v, want, name)
	}
	for _, name := range []string{"weft_feed_fallback_reads_total", "weft_feed_gaps_detected_total", "weft_feed_gaps_filled_total", "weft_feed_events_fetched_total", "weft_feed_lag_sum"} {
		_, ok := got[name]
		testkit.True(t, ok, "metric %s missing", name)
	}
}

// A bus that stops hearing the stream owner's heartbeat (a region cut off from the hub: its
// own connection stays up) flags its teams as following no feed and refuses new loads, until
// beats return and the teams checked their tails.
func TestHubSilenceIsAnOutage(t *testing.T) {
	emb := startEmbedded(t, EmbeddedConfig{NoListen: true})
	beat := 20 * time.Millisecond
	owner, err := Connect(context.Background(), Config{Embedded: emb, ManageStream: true, HubBeatInterval: beat})
	testkit.OK(t, err)
	defer owner.Close()
	edge := connectUser(t, Config{Embedded: emb, HubBeatInterval: beat, GapCheckInterval: time.Hour})
	r := newRecorder(t, "T1")
	subscribe(t, edge, "T1", r).Start(0)
	testkit.Eventually(t, func() bool {
		return edge.lastBeat.Load() != 0 && edge.FeedStatus() == FeedStatus{Subscriptions: 1} && edge.Connected()
	}, "the hub heard and the team following its feed")

	owner.Close() // the beats stop; the edge's own connection stays up
	testkit.Eventually(t, func() bool { return edge.HubSilent() && edge.FeedStatus().WithoutFeed == 1 }, "the team following no feed")
	testkit.True(t, !edge.Connected(), "the feed counts as up while the hub is silent")

	owner2 := connect(t, Config{Embedded: emb, HubBeatInterval: beat})
	publish(t, owner2, "T1", 1, 3) // published while the edge did not follow: live, or read back
	testkit.Eventually(t, func() bool {
		return !edge.HubSilent() && edge.Connected() && edge.FeedStatus().WithoutFeed == 0 && r.count() == 3
	}, "the hub heard again and the team caught up")
	testkit.Equal(t, r.got(), seqRange(1, 3), "events once, in order")
}
