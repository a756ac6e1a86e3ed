package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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

// TestPublisherLeavesARestoredTeam: a team whose stream holds seqs past the database's own
// last (the database restored from an older backup) is left unpublished, counted as a
// failure, rather than its next events being marked published under seqs the stream already
// has; the other teams publish as before, and their published rows are pruned, in batches,
// while the stuck team's unpublished ones stay.
func TestPublisherLeavesARestoredTeam(t *testing.T) {
	pool := database(t)
	bus := backend.Bus(t, backend.NATS(t), pubsub.Config{})
	exec(t, pool, seedSQL)
	func() {
		p := startPublisherFor(t, pool, bus, postgres.PublisherConfig{Poll: 50 * time.Millisecond})
		defer p.stop()
		testkit.EventuallyWithin(t, 30*time.Second, func() bool { // the mark comes after the stream's ack
			var marked int64
			return pool.QueryRow(context.Background(), `SELECT seq FROM weft_published WHERE team = 'T1'`).Scan(&marked) == nil && marked == 9
		}, "T1 published and marked at 9")
	}()
	// The backup: T1 as it was at seq 5, then a new change there, seq 6 again.
	exec(t, pool, `UPDATE weft_teams SET seq = 5 WHERE id = 'T1'`, `DELETE FROM weft_outbox WHERE team = 'T1' AND seq > 5`,
		`UPDATE weft_published SET seq = 5 WHERE team = 'T1'`,
		`INSERT INTO weft_messages (team, channel, user_id, text) VALUES ('T1', 'C1', 'U1', 'after the restore')`,
		`INSERT INTO weft_messages (team, channel, user_id, text) VALUES ('T2', 'C9', 'U9', 'T2 goes on')`)
	postgres.SetPruneBatch(t, 2)
	p := startPublisherFor(t, pool, bus, postgres.PublisherConfig{Poll: 50 * time.Millisecond, Retention: time.Nanosecond})
	defer p.stop()
	waitPublished(t, bus, "T2", 4)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		return metric(t, p.Publisher, "weft_origin_outbox_failures_total") >= 1
	}, "the restored team counted as a failure")
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		var t2 int64
		return pool.QueryRow(context.Background(), `SELECT count(*) FROM weft_outbox WHERE team = 'T2'`).Scan(&t2) == nil && t2 == 0
	}, "T2's published rows pruned")
	last, err := bus.LastSeq(context.Background(), "T1")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(9), "T1's last seq in the stream: the change after the restore not published")
	var marked, kept int64
	testkit.OK(t, pool.QueryRow(context.Background(), `SELECT (SELECT seq FROM weft_published WHERE team = 'T1'),
		(SELECT count(*) FROM weft_outbox WHERE team = 'T1' AND seq > 5)`).Scan(&marked, &kept))
	testkit.Equal(t, [2]int64{marked, kept}, [2]int64{5, 1}, "T1's mark and its unpublished rows")
}

// runningPublisher is a publisher running until stop.
type runningPublisher struct {
	*postgres.Publisher
	stop func()
}

func startPublisherFor(t *testing.T, pool *pgxpool.Pool, bus *pubsub.Bus, cfg postgres.PublisherConfig) runningPublisher {
	t.Helper()
	p := postgres.NewPublisher(pool, bus, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			testkit.OK(t, <-done)
		})
	}
	t.Cleanup(stop)
	return runningPublisher{p, stop}
}
