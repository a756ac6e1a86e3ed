package postgres_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/pubsub"
)

// Cold loads of one team through the whole Teams load path (the edge's), side by side: from
// the origin on PostgreSQL (seeded once per run with the same world, not timed), its listings
// streamed, and streamed in partitions, and from the reference origin, all over loopback HTTP:
//
//	go test ./origin/postgres -run '^$' -bench 'Load' -benchtime 1x
func BenchmarkLoad32k(b *testing.B)   { benchLoad(b, "32k") }
func BenchmarkLoadGiant(b *testing.B) { benchLoad(b, "giant") }

func benchLoad(b *testing.B, size string) {
	world := backend.World(b, 1, size)
	team := world.TeamIDs()[0]
	bus := backend.Bus(b, backend.NATS(b), pubsub.Config{})
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.Cleanup(hc.CloseIdleConnections)
	ccfg := origin.ClientConfig{HTTPClient: hc, Timeout: time.Minute}

	ctx := context.Background()
	dsn := pgtest.Shared(b).CreateDB(b, "load_"+size)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	seeded, err := postgres.Seed(ctx, pool, world, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d rows in %v", seeded.Rows(), seeded.Elapsed)
	// The origin on PostgreSQL as it announces its listings by default (streams), and with
	// partitions too (one per 250,000 rows, up to 8, as the reference origin announces them).
	pgClient := func(cfg postgres.Config) *origin.Client {
		hs := httptest.NewServer(postgres.NewServer(pool, cfg))
		b.Cleanup(hs.Close)
		pgCfg := ccfg
		pgCfg.BaseURL = hs.URL
		c, err := origin.NewClient(pgCfg)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	ref := backend.NewOrigin(b, backend.OriginConfig{World: world, Publisher: bus, Client: ccfg})

	for _, o := range []struct {
		name   string
		client *origin.Client
	}{{"postgres", pgClient(postgres.Config{})}, {"postgres-partitions", pgClient(postgres.Config{MaxPartitions: 8})}, {"reference", ref.Client}} {
		b.Run(o.name, func(b *testing.B) {
			for range b.N {
				teams, err := cache.New(cache.Config{Origin: o.client, Feed: bus, LoadTimeout: 5 * time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				begin := time.Now()
				tm, err := teams.Acquire(ctx, team)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(begin).Seconds(), "load-s")
				users, _, _ := tm.Store().UsersPage("", 1)
				if len(users) == 0 {
					b.Fatal("a team without users")
				}
				tm.Release()
				teams.Shutdown(ctx)
			}
		})
	}
}
