package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestUpsertsMakeOnlyTheirEvents: INSERT … ON CONFLICT on weft's tables makes the event of
// what it did: nothing for a row that was there and did not change, one user_change for one
// that changed, and, when two transactions insert the same new membership at once, one
// member_joined and one more member, with the team's seqs still gap-free.
func TestUpsertsMakeOnlyTheirEvents(t *testing.T) {
	ctx := context.Background()
	pool := database(t)
	exec(t, pool, seedSQL)
	events := func() (n int64, types []string) {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT event->>'type' FROM weft_outbox WHERE team = 'T1' AND seq > 9 ORDER BY seq`)
		testkit.OK(t, err)
		defer rows.Close()
		for rows.Next() {
			var ty string
			testkit.OK(t, rows.Scan(&ty))
			types = append(types, ty)
		}
		testkit.OK(t, rows.Err())
		return int64(len(types)), types
	}
	memberCount := func(ch string) (n int) {
		testkit.OK(t, pool.QueryRow(ctx, `SELECT member_count FROM weft_channels WHERE team = 'T1' AND id = $1`, ch).Scan(&n))
		return n
	}

	exec(t, pool, `INSERT INTO weft_memberships (team, channel, user_id) VALUES ('T1', 'C1', 'U1') ON CONFLICT DO NOTHING`,
		`INSERT INTO weft_users (team, id, name, real_name) VALUES ('T1', 'U1', 'ada', 'Ada Lovelace')
			ON CONFLICT (team, id) DO UPDATE SET name = excluded.name, real_name = excluded.real_name`,
		`INSERT INTO weft_channels (team, id, name) VALUES ('T1', 'C1', 'general') ON CONFLICT (team, id) DO UPDATE SET name = excluded.name`)
	n, _ := events()
	testkit.Equal(t, n, int64(0), "events of upserts that changed nothing")
	testkit.Equal(t, memberCount("C1"), 3, "#general's member_count after a membership that was there")

	exec(t, pool, `INSERT INTO weft_users (team, id, name, real_name) VALUES ('T1', 'U1', 'ada', 'Ada King')
		ON CONFLICT (team, id) DO UPDATE SET name = excluded.name, real_name = excluded.real_name`)
	_, types := events()
	testkit.Equal(t, types, []string{"user_change"}, "events of an upsert that changed a user")

	// Two transactions insert one new membership; the second waits on the team's lock, then
	// finds the row the first committed.
	a, err := pool.Begin(ctx)
	testkit.OK(t, err)
	defer a.Rollback(ctx) //nolint:errcheck // committed below
	const insert = `INSERT INTO weft_memberships (team, channel, user_id) VALUES ('T1', 'C2', 'U3') ON CONFLICT DO NOTHING`
	_, err = a.Exec(ctx, insert)
	testkit.OK(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := pool.Exec(ctx, insert) // its own transaction
		done <- err
	}()
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { // b waits on a's lock of the team's row
		var waiting bool
		return pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO weft_memberships%')`).Scan(&waiting) == nil && waiting
	}, "the second insert to wait on the first's lock")
	testkit.OK(t, a.Commit(ctx))
	testkit.OK(t, <-done)
	_, types = events()
	testkit.Equal(t, types, []string{"user_change", "member_joined"}, "events after two inserts of one membership")
	testkit.Equal(t, memberCount("C2"), 2, "#random's member_count")
	var seq, outbox int64
	testkit.OK(t, pool.QueryRow(ctx, `SELECT (SELECT seq FROM weft_teams WHERE id = 'T1'), (SELECT count(*) FROM weft_outbox WHERE team = 'T1')`).Scan(&seq, &outbox))
	testkit.Equal(t, [2]int64{seq, outbox}, [2]int64{11, 11}, "T1's seq and its outbox rows: no gap")
}
