package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/origin"
)

// Stream is where the publisher puts events: JetStream's WEFT_EVENTS through pubsub.Bus, which
// implements it.
type Stream interface {
	// PublishEvent publishes ev with Nats-Msg-Id team:seq and returns once the stream stored it.
	PublishEvent(ctx context.Context, ev *origin.Event) error
	// LastSeq is the seq of the team's last stored event (0: none).
	LastSeq(ctx context.Context, team string) (int64, error)
}

// PublisherConfig configures a Publisher; zero values are the defaults.
type PublisherConfig struct {
	// Poll bounds how long a committed event waits when its notification was missed (the
	// notifying connection dropped, or notifications were lost in a restart); default 1s.
	Poll time.Duration
	// Batch is how many events of a team are read at once; default 500.
	Batch int
	// Retention is how long published outbox rows are kept; default 24h, the stream's default
	// max age: a row is pruned once the stream no longer needs it as a source of truth either.
	Retention time.Duration
	// StatementTimeout bounds each database statement and each stream call; default 10s. A
	// connection that hangs (a network that drops packets without a reset) then ends the
	// leadership's round in an error, counted and retried, instead of holding it silently.
	StatementTimeout time.Duration
	Logger           *slog.Logger
}

// Publisher moves committed events from the outbox to the stream, each team's in seq order,
// each acknowledged before the next is sent and before it is marked published.
//
// One publisher leads at a time (a session advisory lock): several origin processes on one
// database stand by for each other. A crash between a publish and its mark repeats the event
// at the next start; before publishing a team, a new leader asks the stream for the team's
// last stored seq and starts after it, so the repeat never reaches the stream, even past its
// duplicate window (Nats-Msg-Id absorbs a repeat within it as well).
type Publisher struct {
	pool   *pgxpool.Pool
	stream Stream
	cfg    PublisherConfig

	published prometheus.Counter
	failures  prometheus.Counter
	leader    prometheus.Gauge
	backlog   prometheus.GaugeFunc
	sent      int64 // events published, by Run's goroutine only
}

// publisherLock is the advisory lock key of the leading publisher.
const publisherLock = 0x77656675

// NewPublisher returns a publisher from pool's outbox to stream; Run runs it.
func NewPublisher(pool *pgxpool.Pool, stream Stream, cfg PublisherConfig) *Publisher {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{pool: pool, stream: stream, cfg: cfg,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_origin_outbox_published_total",
			Help: "Events the publisher moved from the outbox to the stream."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_origin_outbox_failures_total",
			Help: "Publisher rounds that failed (database or stream) and were retried."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_origin_outbox_leader",
			Help: "1 while this process's publisher leads (holds the database's publisher lock)."}),
	}
	p.backlog = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_origin_outbox_oldest_unpublished_seconds",
		Help: "Age of the oldest committed event the stream has not acknowledged, over all teams (0: none pending; NaN: the database did not answer). Read from the database at each scrape, by every origin process, leader or not."},
		p.oldestUnpublished)
	return p
}

// oldestUnpublished is the age of the oldest unpublished outbox row: for each team behind, its
// first row after the published mark (an index lookup each). The one measure that sees every
// way publishing can stop, a publisher that hangs without an error included.
func (p *Publisher) oldestUnpublished() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var age float64
	err := p.pool.QueryRow(ctx, `
		SELECT coalesce(extract(epoch FROM now() - min(o.created)), 0)::float8
		FROM weft_teams t LEFT JOIN weft_published w ON w.team = t.id,
		LATERAL (SELECT created FROM weft_outbox WHERE team = t.id AND seq > coalesce(w.seq, 0) ORDER BY seq LIMIT 1) o
		WHERE t.seq > coalesce(w.seq, 0)`).Scan(&age)
	if err != nil {
		return math.NaN()
	}
	return max(age, 0)
}

// Metrics are the publisher's collectors, for a registry.
func (p *Publisher) Metrics() []prometheus.Collector {
	return []prometheus.Collector{p.published, p.failures, p.leader, p.backlog}
}

// Run publishes until ctx ends. Failures (the database or the stream unreachable) are logged
// and retried with backoff; nothing is marked published that the stream did not store.
func (p *Publisher) Run(ctx context.Context) error {
	const firstWait = 100 * time.Millisecond
	wait := firstWait
	for {
		published, err := p.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if published {
			wait = firstWait // a leadership that published: this failure is a new one
		}
		p.failures.Inc()
		p.cfg.Logger.Warn("outbox publisher: retrying", "in", wait, "err", err)
		t := time.NewTimer(wait/2 + rand.N(wait/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// bounded is ctx bounded by the statement timeout.
func (p *Publisher) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.cfg.StatementTimeout)
}

// session is the database session a leadership holds: the lock is its, and every statement
// of the leadership runs on it, so a lost session (the server ended it, the network dropped
// it) fails the next statement and ends the leadership, instead of a standby taking the lock
// while this process still publishes through other sessions.
type session = *pgxpool.Conn

// lead holds one database session: it waits to lead, listens for notifications, and publishes
// every team with unpublished events, on each notification and each poll, until an error.
// published says whether it published anything before that.
func (p *Publisher) lead(ctx context.Context) (published bool, err error) {
	actx, cancel := p.bounded(ctx)
	conn, err := p.pool.Acquire(actx)
	cancel()
	if err != nil {
		return false, err
	}
	// The session ends with the leadership: closing it releases the lock and the LISTEN, and
	// no pooled session is left listening (pgx would buffer every notification for it).
	defer func() {
		cctx, cancel := p.bounded(context.Background())
		defer cancel()
		_ = conn.Hijack().Close(cctx)
	}()
	for {
		var ok bool
		lctx, cancel := p.bounded(ctx)
		err := conn.QueryRow(lctx, `SELECT pg_try_advisory_lock($1)`, publisherLock).Scan(&ok)
		cancel()
		if err != nil {
			return false, err
		}
		if ok {
			break
		}
		t := time.NewTimer(p.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
	p.leader.Set(1)
	defer p.leader.Set(0)
	lctx, cancel := p.bounded(ctx)
	_, err = conn.Exec(lctx, `LISTEN weft_outbox`)
	cancel()
	if err != nil {
		return false, err
	}
	p.cfg.Logger.Info("outbox publisher leads")
	before := p.sent
	defer func() { published = p.sent > before }()
	checked := map[string]bool{} // teams whose stream tail this leadership has read
	lastPrune := time.Time{}
	for {
		if err := p.round(ctx, conn, checked); err != nil {
			return false, err
		}
		if time.Since(lastPrune) > time.Minute {
			if err := p.prune(ctx, conn); err != nil {
				return false, err
			}
			lastPrune = time.Now()
		}
		// Sleep until a commit notifies or the poll is due. Notifications only wake the loop:
		// the round reads what is pending from the tables, so none can be lost in between.
		wctx, cancel := context.WithTimeout(ctx, p.cfg.Poll)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return false, err
		}
	}
}

// round publishes every team that has committed events past its published seq.
func (p *Publisher) round(ctx context.Context, db session, checked map[string]bool) error {
	type pending struct {
		team      string
		from, top int64
	}
	var todo []pending
	qctx, cancel := p.bounded(ctx)
	rows, err := db.Query(qctx, `
		SELECT t.id, coalesce(w.seq, 0), t.seq FROM weft_teams t LEFT JOIN weft_published w ON w.team = t.id
		WHERE t.seq > coalesce(w.seq, 0)`)
	if err == nil {
		todo, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (pd pending, err error) {
			return pd, r.Scan(&pd.team, &pd.from, &pd.top)
		})
	}
	cancel()
	if err != nil {
		return err
	}
	var stuck error
	for _, pd := range todo {
		if !checked[pd.team] {
			// What the stream already holds was published: a publish whose mark a crash lost.
			sctx, cancel := p.bounded(ctx)
			last, err := p.stream.LastSeq(sctx, pd.team)
			cancel()
			if err != nil {
				return fmt.Errorf("reading %s's last seq in the stream: %w", pd.team, err)
			}
			if last > pd.top {
				// The stream has events the database never committed, or no longer has: the
				// database was restored from an older backup, or is another team's. Marking them
				// published would skip this database's next events under those seqs, unseen; the
				// team waits for an operator (docs/origin.md, "The origin on PostgreSQL").
				p.failures.Inc()
				stuck = fmt.Errorf("team %s: the stream holds seq %d, past the database's last, %d: was the database restored?", pd.team, last, pd.top)
				p.cfg.Logger.Error("outbox publisher: team left unpublished", "team", pd.team, "err", stuck)
				continue
			}
			if last > pd.from {
				p.cfg.Logger.Info("outbox publisher: the stream is ahead of the mark", "team", pd.team, "marked", pd.from, "stream", last)
				if err := p.mark(ctx, db, pd.team, last); err != nil {
					return err
				}
				pd.from = last
			}
			checked[pd.team] = true
		}
		if err := p.publishTeam(ctx, db, pd.team, pd.from); err != nil {
			return err
		}
	}
	return nil
}

// publishTeam publishes team's events after seq from, a batch at a time, marking each batch
// once the stream stored all of it.
func (p *Publisher) publishTeam(ctx context.Context, db session, team string, from int64) error {
	for {
		evs, err := p.readOutbox(ctx, db, team, from)
		if err != nil || len(evs) == 0 {
			return err
		}
		for _, ev := range evs {
			sctx, cancel := p.bounded(ctx)
			err := p.stream.PublishEvent(sctx, ev)
			cancel()
			if err != nil {
				// Mark what went out before it, so a retry does not repeat it.
				if last := ev.Seq - 1; last > from {
					_ = p.mark(ctx, db, team, last)
				}
				return err
			}
			p.published.Inc()
			p.sent++
		}
		from = evs[len(evs)-1].Seq
		if err := p.mark(ctx, db, team, from); err != nil {
			return err
		}
		if len(evs) < p.cfg.Batch {
			return nil
		}
	}
}

// readOutbox reads a batch of team's events after seq from, checking that they follow it
// without a gap.
func (p *Publisher) readOutbox(ctx context.Context, db session, team string, from int64) ([]*origin.Event, error) {
	qctx, cancel := p.bounded(ctx)
	defer cancel()
	rows, err := db.Query(qctx, `SELECT seq, event::text FROM weft_outbox WHERE team = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		team, from, p.cfg.Batch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []*origin.Event
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, err
		}
		if want := from + int64(len(evs)) + 1; seq != want {
			// Not a gap the triggers could leave: rows deleted by hand. Nothing after it may be
			// published before it, so the team waits for an operator.
			return nil, fmt.Errorf("team %s: the outbox has seq %d where %d should be", team, seq, want)
		}
		ev, err := origin.DecodeEvent(team, body)
		if err != nil {
			return nil, fmt.Errorf("team %s seq %d: %w", team, seq, err)
		}
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}

// mark records that the stream holds team's events up to seq.
func (p *Publisher) mark(ctx context.Context, db session, team string, seq int64) error {
	ctx, cancel := p.bounded(ctx)
	defer cancel()
	_, err := db.Exec(ctx, `
		INSERT INTO weft_published (team, seq) VALUES ($1, $2)
		ON CONFLICT (team) DO UPDATE SET seq = greatest(weft_published.seq, excluded.seq)`, team, seq)
	return err
}

// pruneBatch bounds the rows one pruning statement deletes: a bulk write of millions of
// events, all as old as their transaction, is pruned in statements that each finish well
// within the statement timeout.
var pruneBatch = 10_000

// prune deletes published outbox rows older than the retention, a batch at a time.
func (p *Publisher) prune(ctx context.Context, db session) error {
	var total int64
	for {
		bctx, cancel := p.bounded(ctx)
		tag, err := db.Exec(bctx, `
			DELETE FROM weft_outbox WHERE (team, seq) IN (
				SELECT o.team, o.seq FROM weft_outbox o JOIN weft_published w ON o.team = w.team
				WHERE o.seq <= w.seq AND o.created < now() - make_interval(secs => $1) LIMIT $2)`,
			p.cfg.Retention.Seconds(), pruneBatch)
		cancel()
		if err != nil {
			return fmt.Errorf("pruning the outbox: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(pruneBatch) {
			break
		}
	}
	if total > 0 {
		p.cfg.Logger.Info("outbox publisher: pruned", "rows", total)
	}
	return nil
}
