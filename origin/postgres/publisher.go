package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

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
	Logger    *slog.Logger
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{pool: pool, stream: stream, cfg: cfg,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_origin_outbox_published_total",
			Help: "Events the publisher moved from the outbox to the stream."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_origin_outbox_failures_total",
			Help: "Publisher rounds that failed (database or stream) and were retried."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_origin_outbox_leader",
			Help: "1 while this process's publisher leads (holds the database's publisher lock)."}),
	}
}

// Metrics are the publisher's collectors, for a registry.
func (p *Publisher) Metrics() []prometheus.Collector {
	return []prometheus.Collector{p.published, p.failures, p.leader}
}

// Run publishes until ctx ends. Failures (the database or the stream unreachable) are logged
// and retried with backoff; nothing is marked published that the stream did not store.
func (p *Publisher) Run(ctx context.Context) error {
	wait := 100 * time.Millisecond
	for {
		err := p.lead(ctx)
		if ctx.Err() != nil {
			return nil
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

// lead holds one database session: it waits to lead, listens for notifications, and publishes
// every team with unpublished events, on each notification and each poll, until an error.
func (p *Publisher) lead(ctx context.Context) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The session's end (the connection closed, the process gone) is what releases the lock.
	defer conn.Release()
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, publisherLock).Scan(&ok); err != nil {
			return err
		}
		if ok {
			break
		}
		t := time.NewTimer(p.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	p.leader.Set(1)
	defer p.leader.Set(0)
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, publisherLock) //nolint:errcheck // the session's end releases it too
	if _, err := conn.Exec(ctx, `LISTEN weft_outbox`); err != nil {
		return err
	}
	p.cfg.Logger.Info("outbox publisher leads")
	checked := map[string]bool{} // teams whose stream tail this leadership has read
	lastPrune := time.Time{}
	for {
		if err := p.round(ctx, checked); err != nil {
			return err
		}
		if time.Since(lastPrune) > time.Minute {
			if err := p.prune(ctx); err != nil {
				return err
			}
			lastPrune = time.Now()
		}
		// Sleep until a commit notifies or the poll is due. Notifications only wake the loop:
		// the round reads what is pending from the tables, so none can be lost in between.
		wctx, cancel := context.WithTimeout(ctx, p.cfg.Poll)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}

// round publishes every team that has committed events past its published seq.
func (p *Publisher) round(ctx context.Context, checked map[string]bool) error {
	rows, err := p.pool.Query(ctx, `
		SELECT t.id, coalesce(w.seq, 0) FROM weft_teams t LEFT JOIN weft_published w ON w.team = t.id
		WHERE t.seq > coalesce(w.seq, 0)`)
	if err != nil {
		return err
	}
	type pending struct {
		team string
		from int64
	}
	var todo []pending
	for rows.Next() {
		var pd pending
		if err := rows.Scan(&pd.team, &pd.from); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, pd)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, pd := range todo {
		if !checked[pd.team] {
			// What the stream already holds was published: a publish whose mark a crash lost.
			last, err := p.stream.LastSeq(ctx, pd.team)
			if err != nil {
				return fmt.Errorf("reading %s's last seq in the stream: %w", pd.team, err)
			}
			if last > pd.from {
				p.cfg.Logger.Info("outbox publisher: the stream is ahead of the mark", "team", pd.team, "marked", pd.from, "stream", last)
				if err := p.mark(ctx, pd.team, last); err != nil {
					return err
				}
				pd.from = last
			}
			checked[pd.team] = true
		}
		if err := p.publishTeam(ctx, pd.team, pd.from); err != nil {
			return err
		}
	}
	return nil
}

// publishTeam publishes team's events after seq from, a batch at a time, marking each batch
// once the stream stored all of it.
func (p *Publisher) publishTeam(ctx context.Context, team string, from int64) error {
	for {
		rows, err := p.pool.Query(ctx, `SELECT seq, event::text FROM weft_outbox WHERE team = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
			team, from, p.cfg.Batch)
		if err != nil {
			return err
		}
		var evs []*origin.Event
		for rows.Next() {
			var seq int64
			var body []byte
			if err := rows.Scan(&seq, &body); err != nil {
				rows.Close()
				return err
			}
			if want := from + int64(len(evs)) + 1; seq != want {
				rows.Close()
				// Not a gap the triggers could leave: rows deleted by hand. Nothing after it
				// may be published before it, so the team waits for an operator.
				return fmt.Errorf("team %s: the outbox has seq %d where %d should be", team, seq, want)
			}
			ev, err := origin.DecodeEvent(team, body)
			if err != nil {
				rows.Close()
				return fmt.Errorf("team %s seq %d: %w", team, seq, err)
			}
			evs = append(evs, ev)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		for _, ev := range evs {
			if err := p.stream.PublishEvent(ctx, ev); err != nil {
				// Mark what went out before it, so a retry does not repeat it.
				if last := ev.Seq - 1; last > from {
					_ = p.mark(ctx, team, last)
				}
				return err
			}
			p.published.Inc()
		}
		from = evs[len(evs)-1].Seq
		if err := p.mark(ctx, team, from); err != nil {
			return err
		}
		if len(evs) < p.cfg.Batch {
			return nil
		}
	}
}

// mark records that the stream holds team's events up to seq.
func (p *Publisher) mark(ctx context.Context, team string, seq int64) error {
	_, err := p.pool.Exec(ctx, `
		INSERT INTO weft_published (team, seq) VALUES ($1, $2)
		ON CONFLICT (team) DO UPDATE SET seq = greatest(weft_published.seq, excluded.seq)`, team, seq)
	return err
}

// prune deletes published outbox rows older than the retention.
func (p *Publisher) prune(ctx context.Context) error {
	tag, err := p.pool.Exec(ctx, `
		DELETE FROM weft_outbox o USING weft_published w
		WHERE o.team = w.team AND o.seq <= w.seq AND o.created < now() - make_interval(secs => $1)`,
		p.cfg.Retention.Seconds())
	if err == nil && tag.RowsAffected() > 0 {
		p.cfg.Logger.Info("outbox publisher: pruned", "rows", tag.RowsAffected())
	}
	return err
}
