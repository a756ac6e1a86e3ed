package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/internal/tlsfiles"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/origin/reference"
)

// pgOpts are the flags of the origin on PostgreSQL (`weft origin --postgres`).
type pgOpts struct {
	url        string
	migrate    bool
	poll       time.Duration
	retention  time.Duration
	partitions int
}

func (p *pgOpts) flags(fs *flag.FlagSet) {
	fs.StringVar(&p.url, "postgres", "", "PostgreSQL URL (postgres://user:pass@host/db): serve the origin from its tables and publish their changes from the outbox, instead of the synthetic world; --size, --seed and --rate then do nothing")
	fs.BoolVar(&p.migrate, "migrate", false, "with --postgres: apply the schema's migrations at start (else the origin refuses a database that weft origin migrate has not brought to its version)")
	fs.DurationVar(&p.poll, "outbox-poll", time.Second, "with --postgres: how often the publisher looks at the outbox when no notification woke it")
	fs.DurationVar(&p.retention, "outbox-retention", 24*time.Hour, "with --postgres: how long published outbox rows are kept (at least the stream's --stream-max-age)")
	fs.IntVar(&p.partitions, "max-partitions", 1, fmt.Sprintf("with --postgres: announce up to this many partitions of a listing, one per 250,000 rows (1 to %d; 1: streams only, faster on the 2 cores it was measured on: docs/origin.md)", origin.MaxPartitions))
}

// connect opens a pool on the URL and checks (or, with --migrate, makes) the schema.
func (p *pgOpts) connect(ctx context.Context, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := p.pool(ctx, defaultServerConns, nil)
	if err != nil {
		return nil, err
	}
	if p.migrate {
		// Not bounded: a migration that builds indexes on a big database takes what it takes,
		// and one cut short rolls back and would be cut short again at every start.
		applied, err := postgres.Migrate(ctx, pool)
		if err != nil {
			pool.Close()
			return nil, err
		}
		log.Info("postgres schema", "applied", applied, "version", postgres.Latest())
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := postgres.CheckSchema(pctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// run serves the origin contract from the database and publishes its outbox until ctx ends.
func (p *pgOpts) run(ctx context.Context, o *originOpts, nats *natsOpts, proc serve.Process, stdout io.Writer, log *slog.Logger,
	tlsMetrics ...prometheus.Collector) error {
	if p.retention <= 0 || p.poll <= 0 {
		return errors.New("--outbox-poll and --outbox-retention must be positive")
	}
	if p.partitions < 1 || p.partitions > origin.MaxPartitions {
		return fmt.Errorf("--max-partitions: want 1 to %d, got %d", origin.MaxPartitions, p.partitions)
	}
	pool, err := p.connect(ctx, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	pubPool, err := p.publisherPool(ctx)
	if err != nil {
		return err
	}
	defer pubPool.Close()
	bus, emb, closeBus, err := nats.connect(ctx, log, "weft-origin")
	if err != nil {
		return err
	}
	defer closeBus()
	pub := postgres.NewPublisher(pubPool, bus, postgres.PublisherConfig{Poll: p.poll, Retention: p.retention, Logger: log})
	ops, err := proc.ServeOps(ctx, o.instrument(bus, append(pub.Metrics(), tlsMetrics...)...), log)
	if err != nil {
		return err
	}
	ln, err := tlsfiles.Listen(o.addr, o.tls)
	if err != nil {
		return err
	}
	natsURL := nats.conn.Redacted()
	if emb != nil {
		natsURL = emb.ClientURL()
	}
	fmt.Fprintf(stdout, "weft origin: PostgreSQL %s (schema %d)\n  origin  %s://%s/origin/v1/teams/{team}\n  nats    %s\n",
		pool.Config().ConnConfig.Host, postgres.Latest(), tlsfiles.Scheme(o.tls, false), ln.Addr(), natsURL)
	if ops != "" {
		fmt.Fprintf(stdout, "  ops     http://%s\n", ops)
	}
	var h http.Handler = postgres.NewServer(pool, postgres.Config{Token: o.token, MaxPartitions: p.partitions, Logger: log})
	if o.wrap != nil {
		h = o.wrap(h)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pub.Run(gctx) })
	g.Go(func() error {
		return serve.Until(gctx, h, ln, 5*time.Second, shutdownOrClose(log))
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("origin stopped")
	return err
}

// runOriginMigrate is `weft origin migrate`: the schema's migrations, applied once each.
func runOriginMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weft.NewFlagSet("origin migrate", "Bring a PostgreSQL database's weft schema (docs/origin.md, the origin on PostgreSQL) to this\n"+
		"build's version: tables, indexes, and the triggers that write the outbox. Safe to run again.")
	url := fs.String("postgres", "", "PostgreSQL URL (postgres://user:pass@host/db)")
	log, err := weft.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if *url == "" {
		return errors.New("--postgres is required")
	}
	pool, err := (&pgOpts{url: *url}).pool(ctx, 1, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := postgres.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	log.Debug("migrated", "applied", applied)
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "weft origin migrate: schema version %d, nothing to do\n", postgres.Latest())
		return nil
	}
	fmt.Fprintf(stdout, "weft origin migrate: applied %v, schema version %d\n", applied, postgres.Latest())
	return nil
}

// defaultServerConns is the contract's pool size when the URL sets none (pool_max_conns): a
// streamed listing holds a connection for its answer, and a team's load streams three
// listings at once (more in partitions), so pgx's default, the CPU count but at least 4, would
// make a few concurrent loads queue.
const defaultServerConns = 20

// pool opens and pings a pool on the URL, of conns connections unless the URL says how many
// (pool_max_conns), or of exactly -conns when conns is negative, with params set on each
// session.
func (p *pgOpts) pool(ctx context.Context, conns int32, params map[string]string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(p.url)
	if err != nil {
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	switch {
	case conns < 0:
		cfg.MaxConns = -conns
	case !strings.Contains(p.url, "pool_max_conns"):
		cfg.MaxConns = conns
	}
	maps.Copy(cfg.ConnConfig.RuntimeParams, params)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	return pool, nil
}

// publisherPool is the outbox publisher's own pool: the session it leads on and one for the
// backlog gauge, so that listings holding the contract's connections never keep it waiting.
// Its queries scan every team: JIT compiling them costs more than running them.
func (p *pgOpts) publisherPool(ctx context.Context) (*pgxpool.Pool, error) {
	return p.pool(ctx, -2, map[string]string{"jit": "off"})
}

// shutdownOrClose stops an origin's HTTP server gracefully, and closes what is still open at
// the end of the window. net/http's Shutdown counts a connection that has not sent a request
// yet as busy for its first 5 s (one an edge's pool dialed ahead and never used keeps it
// waiting), and on PostgreSQL a streamed listing to an edge that stopped reading keeps its
// database connection, which the pool's Close waits for. No request is lost by closing what is
// left; a request still running is cut, and said.
func shutdownOrClose(log *slog.Logger) func(context.Context, *http.Server) error {
	return func(sctx context.Context, hs *http.Server) error {
		err := hs.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			log.Warn("origin: connections still open at the end of the stop window, closed")
			return hs.Close()
		}
		return err
	}
}

// runOriginSeed is `weft origin seed`: a synthetic world loaded into PostgreSQL with COPY, so
// that every load scenario can run against the origin on PostgreSQL too.
func runOriginSeed(ctx context.Context, args []string, stdout io.Writer) error {
	fs := weft.NewFlagSet("origin seed", "Load a synthetic world (the reference origin's) into a PostgreSQL database that weft origin\n"+
		"migrate has prepared: teams, users, channels and memberships, with COPY, making no events.")
	url := fs.String("postgres", "", "PostgreSQL URL (postgres://user:pass@host/db)")
	size := fs.String("size", "small", "world size: "+fmt.Sprint(reference.SizeNames()))
	seed := fs.Int64("seed", 1, "world seed: the same seed gives the same world (the team IDs are the same for every seed)")
	ifEmpty := fs.Bool("if-empty", false, "seed only a database without any team, and leave one that has teams as it is (exit 0): a seed to run at every start")
	log, err := weft.ParseLogged(fs, args, stdout)
	if err != nil {
		return err
	}
	if *url == "" {
		return errors.New("--postgres is required")
	}
	if _, err := reference.SizeByName(*size); err != nil {
		return err // before connecting
	}
	pool, err := (&pgOpts{url: *url}).pool(ctx, 1, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := postgres.CheckSchema(ctx, pool); err != nil {
		return err
	}
	var st *postgres.Stats
	if *ifEmpty {
		st, err = seedIfEmpty(ctx, pool, *size, *seed, log)
	} else {
		st, err = seedWorld(ctx, pool, *size, *seed, log)
	}
	if err != nil {
		return err
	}
	if st == nil {
		fmt.Fprintln(stdout, "weft origin seed: the database has teams: left as it is (--if-empty)")
		return nil
	}
	fmt.Fprintf(stdout, "weft origin seed: %s world: %d teams, %d users, %d channels, %d memberships in %v\n",
		*size, st.Teams, st.Users, st.Channels, st.Memberships, st.Elapsed.Round(time.Millisecond))
	return nil
}
