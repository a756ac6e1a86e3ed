package postgres_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
)

// TestMigratesFromVersion1: a database as weft at schema version 1 left it (seeded, with
// changes in its outbox, some published) is refused by this build until migrated; migrating
// applies what is missing only, keeps every row, and the triggers and the seq carry on where
// they were. The partitions migration 2 makes then serve the existing rows.
func TestMigratesFromVersion1(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Shared(t).CreateDB(t, fmt.Sprintf("v1_%d", os.Getpid())))
	testkit.OK(t, err)
	t.Cleanup(pool.Close)
	applied, err := postgres.MigrateTo(ctx, pool, 1)
	testkit.OK(t, err)
	testkit.Equal(t, applied, []int{1}, "migrations applied to make version 1")
	w := world(t, "tiny", 2)
	_, err = postgres.Seed(ctx, pool, w, nil)
	testkit.OK(t, err)
	team := w.TeamIDs()[0]
	exec(t, pool, fmt.Sprintf(`UPDATE weft_users SET title = 'v1' WHERE team = '%s' AND id IN (SELECT id FROM weft_users WHERE team = '%[1]s' ORDER BY id LIMIT 3)`, team),
		fmt.Sprintf(`INSERT INTO weft_published (team, seq) VALUES ('%s', 2)`, team))
	rows := func() (n [4]int64) {
		for i, table := range []string{"weft_users", "weft_channels", "weft_memberships", "weft_outbox"} {
			n[i] = count(t, pool, table)
		}
		return n
	}
	before := rows()

	err = postgres.CheckSchema(ctx, pool)
	testkit.True(t, err != nil && err.Error() == fmt.Sprintf("postgres: the database's schema is version 1, this build needs %d: run weft origin migrate", postgres.Latest()),
		"a version 1 database: %v", err)
	applied, err = postgres.Migrate(ctx, pool)
	testkit.OK(t, err)
	testkit.Equal(t, applied, []int{2, 3}, "migrations applied to a version 1 database")
	testkit.OK(t, postgres.CheckSchema(ctx, pool))
	testkit.Equal(t, rows(), before, "users, channels, memberships and outbox rows after migrating")
	applied, err = postgres.Migrate(ctx, pool)
	testkit.OK(t, err)
	testkit.Equal(t, len(applied), 0, "migrations applied the second time")

	// The team's next change is seq 4, after the three of version 1.
	exec(t, pool, fmt.Sprintf(`UPDATE weft_channels SET topic = 'v2' WHERE team = '%s' AND id = (SELECT min(id) FROM weft_channels WHERE team = '%[1]s')`, team))
	var seq int64
	testkit.OK(t, pool.QueryRow(ctx, `SELECT max(seq) FROM weft_outbox WHERE team = $1`, team).Scan(&seq))
	testkit.Equal(t, seq, int64(4), "the first seq after migrating")

	srv := httptest.NewServer(postgres.NewServer(pool, postgres.Config{MaxPartitions: 8, PartitionRows: 7}))
	t.Cleanup(srv.Close)
	c, err := origin.NewClient(origin.ClientConfig{BaseURL: srv.URL})
	testkit.OK(t, err)
	info, err := c.Team(ctx, team)
	testkit.OK(t, err)
	testkit.True(t, info.Seq == 2 && info.Listings.Partitions.Users == 3, "the team after migrating: seq %d, %+v", info.Seq, info.Listings)
	users := 0
	for i := range 3 {
		testkit.OK(t, c.ListUsers(ctx, team, origin.ListRequest{Limit: 100, Partition: i, Partitions: 3}, func(p *origin.UsersPage) error {
			users += len(p.Users)
			testkit.True(t, p.NextCursor == "", "partition %d in one page of 100", i)
			return nil
		}))
	}
	testkit.Equal(t, users, w.Size().Users, "users in the 3 partitions")
}
