package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/pubsub"
)

// metric is the value of the publisher's collector named name.
func metric(t *testing.T, p *postgres.Publisher, name string) float64 {
	t.Helper()
	for _, c := range p.Metrics() {
		desc := make(chan *prometheus.Desc, 1)
		c.Describe(desc)
		if d := <-desc; d != nil && strings.Contains(d.String(), `"`+name+`"`) {
			return testutil.ToFloat64(c)
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestBacklogAge: the age of the oldest unpublished event is 0 with nothing pending, grows
// while committed events wait (here: no publisher runs), and is 0 again once a publisher has
// published them; every process reports it, leader or not.
func TestBacklogAge(t *testing.T) {
	pool := database(t)
	bus := backend.Bus(t, backend.NATS(t), pubsub.Config{})
	idle := postgres.NewPublisher(pool, bus, postgres.PublisherConfig{}) // never run: a standby's view
	age := func() float64 { return metric(t, idle, "weft_origin_outbox_oldest_unpublished_seconds") }
	testkit.Equal(t, age(), float64(0), "the backlog of an empty database")
	exec(t, pool, seedSQL)
	first := age()
	testkit.True(t, first > 0, "the backlog's age with 12 events committed and none published: %v", first)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return age() > first }, "the backlog to age")
	startPublisher(t, pool, bus)
	waitPublished(t, bus, "T1", 9)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return age() == 0 }, "the backlog to empty once published and marked")
}

// TestPublisherGivesUpOnAStuckStatement: a leader whose database statement does not return
// (here its mark waits on a row another session holds) ends the round after the statement
// timeout, counts the failure and leads again, instead of holding the leadership silently;
// once the row is free it goes on, and the stream still holds each event once.
func TestPublisherGivesUpOnAStuckStatement(t *testing.T) {
	pool := database(t)
	bus := backend.Bus(t, backend.NATS(t), pubsub.Config{})
	exec(t, pool, seedSQL)
	p := postgres.NewPublisher(pool, bus, postgres.PublisherConfig{Poll: 50 * time.Millisecond, StatementTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		testkit.OK(t, <-done)
	}()
	waitPublished(t, bus, "T1", 9)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		var marked int64
		return pool.QueryRow(context.Background(), `SELECT seq FROM weft_published WHERE team = 'T1'`).Scan(&marked) == nil && marked == 9
	}, "T1 marked at 9")

	tx, err := pool.Begin(context.Background())
	testkit.OK(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck // rolled back below, or already
	_, err = tx.Exec(context.Background(), `SELECT seq FROM weft_published WHERE team = 'T1' FOR UPDATE`)
	testkit.OK(t, err)
	before := metric(t, p, "weft_origin_outbox_failures_total")
	exec(t, pool, `INSERT INTO weft_messages (team, channel, user_id, text) VALUES ('T1', 'C1', 'U1', 'while the mark waits')`)
	waitPublished(t, bus, "T1", 10)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		return metric(t, p, "weft_origin_outbox_failures_total") >= before+2
	}, "the stuck mark to fail, and again after a new leadership")
	testkit.OK(t, tx.Rollback(context.Background()))
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		var marked int64
		return pool.QueryRow(context.Background(), `SELECT seq FROM weft_published WHERE team = 'T1'`).Scan(&marked) == nil && marked == 10
	}, "T1 marked at 10 once the row is free")
	evs := streamed(t, bus, "T1", 10)
	testkit.Equal(t, evs[9].Text, "while the mark waits", "the event published while the mark waited")
	last, err := bus.LastSeq(context.Background(), "T1")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(10), "T1's last seq in the stream")
}
