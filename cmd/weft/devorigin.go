package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/internal/serve"
	"github.com/weft-edge/weft/internal/tlsfiles"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

// The origin `weft dev` runs: the reference origin's synthetic world with live activity, or
// with --postgres the origin on PostgreSQL, migrated and, when the database has no team yet,
// seeded with the same world, so that everything dev runs (the page, the load scenarios
// spawning dev) runs against the database too.

// devOrigin is a started origin: listening, not serving until run.
type devOrigin struct {
	ln  net.Listener
	url string
	// teams are the first teams, each with its first users (deactivated ones left out), for
	// the tokens dev prints and the page's people.
	teams []devTeam
	// describe is the world for dev's banner: "small world, 3 teams, 20 events/s".
	describe string
	// run serves until ctx ends on g; stopAfter bounds the HTTP shutdown after.
	run   func(ctx context.Context, g *errgroup.Group, stopAfter time.Duration) error
	close func()
}

type devTeam struct {
	origin.Team
	users []origin.User
}

// devTeamUsers bounds the users kept per team: the page offers devPageUsers of them.
const devTeamUsers = 64

// startDevOrigin starts the reference origin, or with pg.url the origin on PostgreSQL.
func startDevOrigin(ctx context.Context, o *originOpts, pg *pgOpts, bus *pubsub.Bus, log *slog.Logger) (*devOrigin, error) {
	if pg.url != "" {
		return startDevPostgres(ctx, o, pg, bus, log)
	}
	srv, ln, err := o.start(bus, log)
	if err != nil {
		return nil, err
	}
	d := &devOrigin{ln: ln, url: "http://" + ln.Addr().String(), close: func() { ln.Close() }}
	ids := srv.TeamIDs()
	d.describe = fmt.Sprintf("%s world, %d teams, %.0f events/s", o.size, len(ids), o.rate)
	for _, id := range ids[:min(devPageTeams, len(ids))] {
		t, _ := srv.Team(id)
		users := slices.DeleteFunc(srv.Users(id), func(u origin.User) bool { return u.Deleted })
		d.teams = append(d.teams, devTeam{Team: t, users: users[:min(devTeamUsers, len(users))]})
	}
	d.run = func(ctx context.Context, g *errgroup.Group, stopAfter time.Duration) error {
		return o.run(ctx, g, srv, ln, stopAfter, log)
	}
	return d, nil
}

// startDevPostgres migrates the database, seeds the world of --size and --seed into it when it
// has no team, and listens. run serves the contract and publishes the outbox.
func startDevPostgres(ctx context.Context, o *originOpts, pg *pgOpts, bus *pubsub.Bus, log *slog.Logger) (*devOrigin, error) {
	if o.rate > 0 {
		return nil, errors.New("--rate: the origin on PostgreSQL makes no synthetic activity (its changes are writes to its tables, or POST /origin/admin/teams/{team}/events): use --rate 0 with --postgres")
	}
	pg.migrate = true // dev brings its database to the schema, as weft origin --migrate
	pool, err := pg.connect(ctx, log)
	if err != nil {
		return nil, err
	}
	pubPool, err := pg.publisherPool(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	d := &devOrigin{}
	st, err := seedIfEmpty(ctx, pool, o.size, o.seed, log)
	seeded := ""
	if st != nil {
		seeded = fmt.Sprintf(" (seeded with the %s world in %v)", o.size, st.Elapsed.Round(time.Millisecond))
	}
	if err == nil {
		d.teams, d.describe, err = pgTeams(ctx, pool)
	}
	if err == nil {
		d.ln, err = tlsfiles.Listen(o.addr, o.tls)
	}
	if err != nil {
		pubPool.Close()
		pool.Close()
		return nil, err
	}
	d.url = "http://" + d.ln.Addr().String()
	d.describe = fmt.Sprintf("PostgreSQL %s: %s%s, no synthetic activity", pool.Config().ConnConfig.Host, d.describe, seeded)
	d.close = func() { d.ln.Close(); pubPool.Close(); pool.Close() }
	d.run = func(ctx context.Context, g *errgroup.Group, stopAfter time.Duration) error {
		pub := postgres.NewPublisher(pubPool, bus, postgres.PublisherConfig{Poll: pg.poll, Retention: pg.retention, Logger: log})
		var h http.Handler = postgres.NewServer(pool, postgres.Config{Token: o.token, Logger: log})
		if o.wrap != nil {
			h = o.wrap(h)
		}
		g.Go(func() error { return pub.Run(ctx) })
		g.Go(func() error {
			return serve.Until(ctx, h, d.ln, stopAfter, shutdownOrClose(log))
		})
		return nil
	}
	return d, nil
}

// seedIfEmpty seeds the world of size and seed into a database without teams; it returns nil
// for one that has teams (a database is never seeded twice).
func seedIfEmpty(ctx context.Context, pool *pgxpool.Pool, size string, seed int64, log *slog.Logger) (*postgres.Stats, error) {
	var any bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM weft_teams)`).Scan(&any); err != nil {
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	if any {
		return nil, nil
	}
	st, err := seedWorld(ctx, pool, size, seed, log)
	if errors.Is(err, postgres.ErrTeamExists) {
		return nil, nil // another process seeded it first
	}
	return st, err
}

// seedWorld seeds the world of size and seed.
func seedWorld(ctx context.Context, pool *pgxpool.Pool, size string, seed int64, log *slog.Logger) (*postgres.Stats, error) {
	sz, err := reference.SizeByName(size)
	if err != nil {
		return nil, err
	}
	world, err := reference.NewWorld(seed, sz)
	if err != nil {
		return nil, err
	}
	st, err := postgres.Seed(ctx, pool, world, func(table string, rows int64) { log.Info("seeding", "table", table, "rows", rows) })
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// pgTeams reads the first teams and their first active users, and describes the database.
func pgTeams(ctx context.Context, pool *pgxpool.Pool) ([]devTeam, string, error) {
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM weft_teams`).Scan(&n); err != nil {
		return nil, "", err
	}
	rows, _ := pool.Query(ctx, `SELECT id, name, domain, updated FROM weft_teams ORDER BY id LIMIT $1`, devPageTeams)
	teams, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (devTeam, error) {
		var t devTeam
		return t, r.Scan(&t.ID, &t.Name, &t.Domain, &t.Updated)
	})
	if err != nil {
		return nil, "", err
	}
	for i := range teams {
		rows, _ := pool.Query(ctx, `SELECT id, name, real_name, display_name, title, is_bot FROM weft_users
			WHERE team = $1 AND NOT deleted ORDER BY id LIMIT $2`, teams[i].ID, devTeamUsers)
		teams[i].users, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (origin.User, error) {
			u := origin.User{Team: teams[i].ID}
			return u, r.Scan(&u.ID, &u.Name, &u.RealName, &u.DisplayName, &u.Title, &u.IsBot)
		})
		if err != nil {
			return nil, "", err
		}
	}
	if len(teams) == 0 || len(teams[0].users) == 0 {
		return nil, "", errors.New("--postgres: the database has teams but the first has no active user to give a token to")
	}
	return teams, fmt.Sprintf("%d teams", n), nil
}
