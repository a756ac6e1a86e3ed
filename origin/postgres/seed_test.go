package postgres_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/origin/reference"
)

var seedDBs atomic.Int64

// seedDB is a fresh, migrated database of the shared server, for one seed.
func seedDB(t testkit.T) *pgxpool.Pool {
	t.Helper()
	name := fmt.Sprintf("seed_%d_%d", os.Getpid(), seedDBs.Add(1))
	pool, err := pgxpool.New(context.Background(), pgtest.Shared(t).CreateDB(t, name))
	testkit.OK(t, err)
	t.Cleanup(pool.Close)
	_, err = postgres.Migrate(context.Background(), pool)
	testkit.OK(t, err)
	return pool
}

func world(t testkit.T, size string, seed int64) *reference.World {
	t.Helper()
	sz, err := reference.SizeByName(size)
	testkit.OK(t, err)
	w, err := reference.NewWorld(seed, sz)
	testkit.OK(t, err)
	return w
}

// count is a table's rows.
func count(t *testing.T, pool *pgxpool.Pool, table string) int64 {
	t.Helper()
	var n int64
	testkit.OK(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// TestSeedLoadsTheWorld: every team, user, channel and membership of the world is in the
// tables as the reference origin serves it, with no event made and every seq at 0, and the
// first change after the seed is seq 1 at version 2, as in the reference origin.
func TestSeedLoadsTheWorld(t *testing.T) {
	ctx := context.Background()
	pool := seedDB(t)
	w := world(t, "tiny", 7)
	ref, err := reference.NewServer(reference.ServerConfig{World: w})
	testkit.OK(t, err)

	schema := func() []string {
		rows, err := pool.Query(ctx, `
			SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
			FROM pg_constraint WHERE connamespace = 'public'::regnamespace
			UNION ALL SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid::regclass::text LIKE 'weft_%'
			ORDER BY 1`)
		testkit.OK(t, err)
		defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		testkit.OK(t, err)
		return defs
	}
	before := schema()
	testkit.True(t, len(before) > 10, "the schema's constraints and indexes: %q", before)

	last := map[string]int64{}
	st, err := postgres.Seed(ctx, pool, w, func(table string, rows int64) { last[table] = rows })
	testkit.OK(t, err)
	t.Logf("seeded in %v: %+v", st.Elapsed, st)
	sz := w.Size()
	var members int64
	for _, team := range w.TeamIDs() {
		members += w.MembershipCount(team)
	}
	testkit.Equal(t, st, postgres.Stats{Teams: int64(sz.Teams), Users: int64(sz.Teams * sz.Users),
		Channels: int64(sz.Teams * sz.Channels), Memberships: members, Elapsed: st.Elapsed}, "stats")
	testkit.Equal(t, last, map[string]int64{"weft_teams": st.Teams, "weft_users": st.Users,
		"weft_channels": st.Channels, "weft_memberships": st.Memberships}, "last progress of each table")
	testkit.Equal(t, schema(), before, "constraints and indexes after the seed (it drops some for the load)")

	for _, id := range w.TeamIDs() {
		want, _ := ref.Team(id)
		var got origin.Team
		var seq int64
		testkit.OK(t, pool.QueryRow(ctx, `SELECT id, name, domain, updated, seq,
			(SELECT count(*) FROM weft_users WHERE team = $1), (SELECT count(*) FROM weft_channels WHERE team = $1)
			FROM weft_teams WHERE id = $1`, id).
			Scan(&got.ID, &got.Name, &got.Domain, &got.Updated, &seq, &got.UserCount, &got.ChannelCount))
		testkit.Equal(t, got, want, "team "+id)
		testkit.Equal(t, seq, int64(0), "seq of team "+id)

		users := query(t, pool, `SELECT id, team, name, real_name, display_name, title, avatar_url, tz, is_bot, deleted, updated
			FROM weft_users WHERE team = $1`, id, func(r pgx.CollectableRow) (u origin.User, err error) {
			err = r.Scan(&u.ID, &u.Team, &u.Name, &u.RealName, &u.DisplayName, &u.Title, &u.AvatarURL, &u.TZ, &u.IsBot, &u.Deleted, &u.Updated)
			return u, err
		})
		slices.SortFunc(users, func(a, b origin.User) int { return strings.Compare(a.ID, b.ID) })
		testkit.Equal(t, users, ref.Users(id), "users of "+id)

		channels := query(t, pool, `SELECT id, team, name, topic, purpose, is_private, is_archived, created, creator, member_count, updated
			FROM weft_channels WHERE team = $1`, id, func(r pgx.CollectableRow) (c origin.Channel, err error) {
			var created time.Time
			err = r.Scan(&c.ID, &c.Team, &c.Name, &c.Topic, &c.Purpose, &c.IsPrivate, &c.IsArchived, &created, &c.Creator, &c.MemberCount, &c.Updated)
			c.Created = created.UTC().Format(time.RFC3339)
			return c, err
		})
		slices.SortFunc(channels, func(a, b origin.Channel) int { return strings.Compare(a.ID, b.ID) })
		testkit.Equal(t, channels, ref.Channels(id), "channels of "+id)

		// The reference origin lists memberships by user, then channel.
		memberships := query(t, pool, `SELECT channel, user_id, updated FROM weft_memberships WHERE team = $1`, id,
			func(r pgx.CollectableRow) (m origin.Membership, err error) {
				err = r.Scan(&m.Channel, &m.User, &m.Updated)
				return m, err
			})
		slices.SortFunc(memberships, func(a, b origin.Membership) int {
			return cmp.Or(strings.Compare(a.User, b.User), strings.Compare(a.Channel, b.Channel))
		})
		testkit.Equal(t, memberships, ref.Memberships(id), "memberships of "+id)
	}
	testkit.Equal(t, count(t, pool, "weft_outbox"), int64(0), "outbox rows after the seed")

	// A change after the seed, by any program writing the tables, is the team's first event.
	team := w.TeamIDs()[1]
	user := ref.Users(team)[3]
	_, err = pool.Exec(ctx, `UPDATE weft_users SET title = 'Seed Tester' WHERE team = $1 AND id = $2`, team, user.ID)
	testkit.OK(t, err)
	var (
		seq, updated, teamSeq int64
		event                 []byte
	)
	testkit.OK(t, pool.QueryRow(ctx, `SELECT o.seq, o.event, u.updated, t.seq FROM weft_outbox o, weft_users u, weft_teams t
		WHERE o.team = $1 AND u.team = $1 AND u.id = $2 AND t.id = $1`, team, user.ID).Scan(&seq, &event, &updated, &teamSeq))
	testkit.Equal(t, [3]int64{seq, updated, teamSeq}, [3]int64{1, 2, 1}, "seq of the event, version of the user, seq of the team")
	var ev origin.Event
	testkit.OK(t, json.Unmarshal(event, &ev))
	user.Title, user.Updated = "Seed Tester", 2
	testkit.True(t, ev.Type == "user_change" && ev.User != nil && *ev.User == user, "event %s, want a user_change with %+v", event, user)
	testkit.Equal(t, count(t, pool, "weft_outbox"), int64(1), "outbox rows after one change")
}

// TestSeedRefusesASeededDatabase: a second seed of a world whose teams are there already
// fails with ErrTeamExists and adds nothing.
func TestSeedRefusesASeededDatabase(t *testing.T) {
	ctx := context.Background()
	pool := seedDB(t)
	st, err := postgres.Seed(ctx, pool, world(t, "tiny", 1), nil)
	testkit.OK(t, err)
	// Another seed gives other names but the same team IDs: the indices spell them.
	_, err = postgres.Seed(ctx, pool, world(t, "tiny", 2), nil)
	testkit.IsErr(t, err, postgres.ErrTeamExists)
	testkit.Equal(t, count(t, pool, "weft_users"), st.Users, "users after the refused seed")
	testkit.Equal(t, count(t, pool, "weft_memberships"), st.Memberships, "memberships after the refused seed")
}

// TestSeedLeavesNothingWhenCancelled: a seed cancelled half-way, after its users are copied,
// rolls all of it back.
func TestSeedLeavesNothingWhenCancelled(t *testing.T) {
	pool := seedDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := postgres.Seed(ctx, pool, world(t, "tiny", 1), func(table string, _ int64) {
		if table == "weft_users" {
			cancel()
		}
	})
	testkit.True(t, err != nil, "a cancelled seed succeeded")
	for _, table := range []string{"weft_teams", "weft_users", "weft_channels", "weft_memberships", "weft_outbox"} {
		testkit.Equal(t, count(t, pool, table), int64(0), table+" rows after the cancelled seed")
	}
}

func query[T any](t *testing.T, pool *pgxpool.Pool, sql string, arg any, scan pgx.RowToFunc[T]) []T {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, arg)
	testkit.OK(t, err)
	out, err := pgx.CollectRows(rows, scan)
	testkit.OK(t, err)
	return out
}

// BenchmarkSeed32k seeds the 32k world (32,000 users, 3,200 channels, 646,544 memberships)
// into a fresh database per iteration.
func BenchmarkSeed32k(b *testing.B) { benchmarkSeed(b, "32k") }

// BenchmarkSeedGiant seeds the giant world (366,000 users, 5.5 million rows): about 30 s an
// iteration here, so run it alone: go test -run '^$' -bench SeedGiant -benchtime 1x.
func BenchmarkSeedGiant(b *testing.B) { benchmarkSeed(b, "giant") }

func benchmarkSeed(b *testing.B, size string) {
	w := world(b, size, 1)
	var rows int64
	var took time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pool := seedDB(b)
		b.StartTimer()
		st, err := postgres.Seed(context.Background(), pool, w, nil)
		testkit.OK(b, err)
		rows += st.Rows()
		took += st.Elapsed
		b.Logf("%s: %d teams, %d users, %d channels, %d memberships in %v", size, st.Teams, st.Users, st.Channels, st.Memberships, st.Elapsed)
	}
	b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
	if hwm, ok := peakRSS(); ok {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MB")
	}
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS() (int64, bool) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
