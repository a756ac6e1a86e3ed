package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// benchStream keeps everything: a subscriber that falls behind fills from the stream instead
// of losing its subscription.
var benchStream = StreamConfig{MaxMsgsPerSubject: -1}

// publishAsync stores events of teams round-robin, seqs 1..perTeam, through JetStream with
// their message IDs, many in flight at once (one connection keeps them in order).
func publishAsync(tb testing.TB, b *Bus, teams []string, perTeam int) {
	tb.Helper()
	payloads := make([][]byte, len(teams))
	for seq := 1; seq <= perTeam; seq++ {
		for i, team := range teams {
			ev := event(team, int64(seq))
			data, err := json.Marshal(ev)
			testkit.OK(tb, err)
			payloads[i] = data
			m := &nats.Msg{Subject: origin.Subject(team), Data: data, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, ev.MsgID())
			_, err = b.js.PublishMsgAsync(m)
			testkit.OK(tb, err)
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("async publishes not acknowledged")
	}
}

// countingHandler counts deliveries and checks their order.
type countingHandler struct {
	next  int64
	total *atomic.Int64
	tb    testing.TB
}

func (h *countingHandler) Event(ev *origin.Event) {
	if ev.Seq != h.next {
		h.tb.Errorf("got seq %d, want %d", ev.Seq, h.next)
	}
	h.next++
	h.total.Add(1)
}

func (h *countingHandler) Lost(err error) { h.tb.Errorf("lost: %v", err) }

var benchRun atomic.Int64

func benchDeliveries(b *testing.B, nTeams int) {
	b.ReportAllocs()
	e := startEmbedded(b, EmbeddedConfig{NoListen: true})
	pub := connect(b, Config{Embedded: e, Stream: benchStream})
	sub := connect(b, Config{Embedded: e, Stream: benchStream})
	run := benchRun.Add(1)
	teams := make([]string, nTeams)
	var total atomic.Int64
	for i := range teams {
		teams[i] = fmt.Sprintf("B%dT%d", run, i)
		subscribe(b, sub, teams[i], &countingHandler{next: 1, total: &total, tb: b}).Start(0)
	}
	perTeam := max(b.N/nTeams, 1)
	want := int64(perTeam * nTeams)
	b.ResetTimer()
	start := time.Now()
	publishAsync(b, pub, teams, perTeam)
	published := time.Since(start)
	testkit.EventuallyOr(b, 2*time.Minute, func() bool { return total.Load() >= want }, "every delivery",
		func() { b.Logf("delivered %d of %d", total.Load(), want) })
	elapsed := time.Since(start)
	b.StopTimer()
	st := sub.Stats()
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(want)/published.Seconds(), "acked/s")
	b.ReportMetric(float64(st.Filled)/float64(want)*100, "%filled")
}

// BenchmarkDeliveryOneTeam: events published through JetStream (async acks, one publisher
// connection) and delivered in order to one team subscription on another connection.
func BenchmarkDeliveryOneTeam(b *testing.B) { benchDeliveries(b, 1) }

// BenchmarkDelivery100Teams: the same, round-robin over 100 team subscriptions.
func BenchmarkDelivery100Teams(b *testing.B) { benchDeliveries(b, 100) }

// BenchmarkPublishEvent: one acknowledged publish at a time, as the origin does it.
func BenchmarkPublishEvent(b *testing.B) {
	b.ReportAllocs()
	_, bus := newBus(b, Config{Stream: benchStream})
	seq := int64(0)
	for b.Loop() {
		seq++
		if err := bus.PublishEvent(context.Background(), event("TP", seq)); err != nil {
			b.Fatal(err)
		}
	}
}

// seekFixture is 100 teams × 1,000 events, interleaved in the stream.
func seekFixture(b *testing.B) (*Bus, []string) {
	_, bus := newBus(b, Config{Stream: benchStream})
	teams := make([]string, 100)
	for i := range teams {
		teams[i] = fmt.Sprintf("S%03d", i)
	}
	publishAsync(b, bus, teams, 1000)
	return bus, teams
}

// BenchmarkSeek finds a random team seq among 100 teams × 1,000 events with no hint: a
// binary search of GetMsg probes over 100,000 stream seqs.
func BenchmarkSeek(b *testing.B) {
	bus, teams := seekFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		team, want := teams[rand.N(len(teams))], 1+rand.Int64N(1000)
		_, ev, _, err := bus.seek(ctx, bus.src, team, want, nil, true)
		if err != nil || ev.Seq != want {
			b.Fatalf("seek %s %d: %v %v", team, want, ev, err)
		}
	}
}

// BenchmarkSeekWithHint is the gap-filling case: the position of the seq before is known.
func BenchmarkSeekWithHint(b *testing.B) {
	bus, teams := seekFixture(b)
	ctx := context.Background()
	type pos struct {
		seq int64
		at  uint64
	}
	known := make(map[string][]pos)
	for _, team := range teams[:10] {
		for want := int64(1); want <= 1000; want += 97 {
			at, _, _, err := bus.seek(ctx, bus.src, team, want, nil, true)
			testkit.OK(b, err)
			known[team] = append(known[team], pos{want, at})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		team := teams[rand.N(10)]
		p := known[team][rand.N(len(known[team]))]
		ts := &teamState{hint: hint{team: p.seq, stream: p.at}}
		_, ev, _, err := bus.seek(ctx, bus.src, team, p.seq+1, ts, false)
		if err != nil || ev.Seq != p.seq+1 {
			b.Fatalf("seek %s %d: %v %v", team, p.seq+1, ev, err)
		}
	}
}

// BenchmarkReplay1000 replays one team's 1,000 events out of 100 teams' 100,000.
func BenchmarkReplay1000(b *testing.B) {
	bus, teams := seekFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := bus.Replay(ctx, teams[rand.N(len(teams))], 0, 0, func(*origin.Event) error { n++; return nil })
		if err != nil || n != 1000 {
			b.Fatalf("replayed %d: %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
}
