package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weft-edge/weft/origin/reference"
)

// ErrTeamExists is Seed refusing a database that already holds one of the world's teams. A
// team's ID spells only its index, so a world of any seed or size collides with one loaded
// before: Seed says so up front rather than failing on a duplicate key half-way.
var ErrTeamExists = errors.New("postgres: team already in the database")

// Stats is what Seed loaded: rows per table, and how long it took, ANALYZE and VACUUM included.
type Stats struct {
	Teams, Users, Channels, Memberships int64
	Elapsed                             time.Duration
}

// Rows is the number of rows loaded into all four tables.
func (s Stats) Rows() int64 { return s.Teams + s.Users + s.Channels + s.Memberships }

// progressEvery is how many rows of a table pass between two progress calls: a few calls a
// second at COPY speed, so a giant seed shows it is alive without flooding a terminal.
const progressEvery = 100_000

// Seed loads the base state of world (its teams, users, channels and memberships, each at
// version 1) into the tables, as `weft origin seed` does before an origin serves them.
//
// The load is one transaction on one connection with weft.seeding on: the triggers make no
// events and keep the world's versions, every team's seq stays 0 (its first change will be seq
// 1, updated 2, as in the reference origin), and a failed or cancelled seed leaves nothing
// behind. Rows go in with COPY, streamed from the world as they are generated.
//
// The transaction takes the four tables for itself (ACCESS EXCLUSIVE) until it commits,
// because it drops their foreign keys and secondary indexes for the load and restores them
// at the end (see loosen): the origin's readers and writers wait for a seed, so
// seed before serving. ANALYZE runs in the same transaction, so the tables are committed with
// their statistics.
//
// A database that already holds any of the world's teams is refused with ErrTeamExists.
// progress, if not nil, is called with a table's name and its rows so far every 100,000 rows
// and once at its end, from one goroutine at a time (not necessarily the caller's).
func Seed(ctx context.Context, pool *pgxpool.Pool, world *reference.World, progress func(table string, rows int64)) (Stats, error) {
	start := time.Now()
	if progress == nil {
		progress = func(string, int64) {}
	}
	w := &worldRows{world: world, size: world.Size(), teams: world.TeamIDs()}

	var st Stats
	copies := []struct {
		table string
		cols  []string
		rows  func() func([]any) (bool, error)
		n     *int64
	}{
		{"weft_teams", []string{"id", "name", "domain", "updated", "seq"}, w.teamRows, &st.Teams},
		{"weft_users", []string{"team", "id", "name", "real_name", "display_name", "title", "avatar_url", "tz", "is_bot", "deleted", "updated"}, w.userRows, &st.Users},
		{"weft_channels", []string{"team", "id", "name", "topic", "purpose", "is_private", "is_archived", "created", "creator", "member_count", "updated"}, w.channelRows, &st.Channels},
		{"weft_memberships", []string{"team", "channel", "user_id", "updated"}, w.membershipRows, &st.Memberships},
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// One statement takes the locks dropping the foreign keys would take table by table:
		// two seeds take turns, and the check below cannot race another seed's commit.
		if _, err := tx.Exec(ctx, `SET LOCAL weft.seeding = on;
			LOCK TABLE weft_teams, weft_users, weft_channels, weft_memberships IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		var taken string
		err := tx.QueryRow(ctx, `SELECT id FROM weft_teams WHERE id = ANY($1) ORDER BY id LIMIT 1`, w.teams).Scan(&taken)
		switch {
		case err == nil:
			return fmt.Errorf("%w: %s (seed a fresh database)", ErrTeamExists, taken)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		restore, err := loosen(ctx, tx)
		if err != nil {
			return err
		}
		for _, c := range copies {
			src := &rowStream{ctx: ctx, table: c.table, next: c.rows(), progress: progress, row: make([]any, len(c.cols))}
			n, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, src)
			if err != nil {
				return fmt.Errorf("copy into %s: %w", c.table, err)
			}
			*c.n = n
			progress(c.table, n)
		}
		// Before the foreign keys come back: validating one is a join the planner plans from
		// the statistics, and without them (a table it takes for empty) the 32k world's
		// memberships took over two minutes to validate instead of a fifth of a second.
		if _, err := tx.Exec(ctx, `ANALYZE weft_teams, weft_users, weft_channels, weft_memberships`); err != nil {
			return err
		}
		for _, sql := range restore {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("restoring what the load went without: %s: %w", sql, err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrTeamExists) {
			return Stats{}, err
		}
		return Stats{}, fmt.Errorf("postgres: seed: %w", err)
	}
	// VACUUM (outside the transaction: it cannot run in one) marks the loaded pages all-visible.
	// Until it has, a partition of memberships, read on its own index in bucket order, fetches
	// each row from the table at random: the giant team's memberships took 3.1 s a partition
	// instead of 0.34 s. Autovacuum would get there too, later.
	if _, err := pool.Exec(ctx, `VACUUM weft_users, weft_channels, weft_memberships`); err != nil {
		return st, fmt.Errorf("postgres: seed: the rows are in, but vacuuming them failed: %w", err)
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// loosen drops the foreign keys and non-unique indexes of the users, channels and
// memberships (today: four keys and weft_memberships_user), whatever the migrations made them,
// and returns the statements that restore them. Measured: checking two foreign keys row by
// row was half of the server's time in a membership's COPY (perf, 32k world), and keeping
// weft_memberships_user up to date in a load ordered by channel made giant's seed 41 s
// instead of 26; validating each key in one join and building the index in one sort
// afterwards cost giant 8 s. Primary keys and unique indexes stay: they refuse
// a duplicate as the rows go in.
func loosen(ctx context.Context, tx pgx.Tx) (restore []string, err error) {
	rows, err := tx.Query(ctx, `
		SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
			format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
		FROM pg_constraint WHERE conrelid = ANY($1::regclass[]) AND contype = 'f'
		UNION ALL
		SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid)
		FROM pg_index WHERE indrelid = ANY($1::regclass[]) AND NOT indisunique`,
		[]string{"weft_users", "weft_channels", "weft_memberships"})
	if err != nil {
		return nil, err
	}
	var drops []string
	var drop, undo string
	if _, err := pgx.ForEachRow(rows, []any{&drop, &undo}, func() error {
		drops, restore = append(drops, drop), append(restore, undo)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, sql := range drops {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return nil, fmt.Errorf("%s: %w", sql, err)
		}
	}
	return restore, nil
}

// rowStream is a pgx.CopyFromSource over next, which fills a row and says whether there was
// one. pgx encodes each row before asking for the next, so one row slice serves them all.
type rowStream struct {
	ctx      context.Context
	table    string
	next     func(row []any) (bool, error)
	row      []any
	n        int64
	progress func(string, int64)
	err      error
}

func (s *rowStream) Next() bool {
	if s.err != nil {
		return false
	}
	if s.n%4096 == 0 {
		// COPY only notices a cancelled context between the chunks it sends; generating a
		// giant table's rows should stop as soon.
		if s.err = s.ctx.Err(); s.err != nil {
			return false
		}
	}
	ok, err := s.next(s.row)
	if err != nil {
		s.err = err
		return false
	}
	if ok {
		s.n++
		if s.n%progressEvery == 0 {
			s.progress(s.table, s.n)
		}
	}
	return ok
}

func (s *rowStream) Values() ([]any, error) { return s.row, nil }
func (s *rowStream) Err() error             { return s.err }

// worldRows generates the tables' rows from a world, team after team.
type worldRows struct {
	world *reference.World
	size  reference.Size
	teams []string
}

// errWorldIDs says the world did not hold what its own IDs and counts promised.
var errWorldIDs = errors.New("the reference world is not as its IDs and counts say")

func (w *worldRows) ids(kind byte, t, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		if kind == 'U' {
			ids[i] = reference.UserID(t, i)
		} else {
			ids[i] = reference.ChannelID(t, i)
		}
	}
	return ids
}

func (w *worldRows) teamRows() func([]any) (bool, error) {
	t := 0
	return func(row []any) (bool, error) {
		if t == len(w.teams) {
			return false, nil
		}
		team, ok := w.world.Team(w.teams[t])
		if !ok {
			return false, fmt.Errorf("no team %s in the world", w.teams[t])
		}
		t++
		row[0], row[1], row[2], row[3], row[4] = team.ID, team.Name, team.Domain, team.Updated, int64(0)
		return true, nil
	}
}

func (w *worldRows) userRows() func([]any) (bool, error) {
	t, u := 0, 0
	return func(row []any) (bool, error) {
		if u == w.size.Users {
			t, u = t+1, 0
		}
		if t == len(w.teams) {
			return false, nil
		}
		id := reference.UserID(t, u)
		x, ok := w.world.User(id)
		if !ok || x.ID != id {
			return false, fmt.Errorf("%w: user %d of team %s", errWorldIDs, u, w.teams[t])
		}
		u++
		row[0], row[1], row[2], row[3], row[4], row[5] = x.Team, x.ID, x.Name, x.RealName, x.DisplayName, x.Title
		row[6], row[7], row[8], row[9], row[10] = x.AvatarURL, x.TZ, x.IsBot, x.Deleted, x.Updated
		return true, nil
	}
}

func (w *worldRows) channelRows() func([]any) (bool, error) {
	t, c := 0, 0
	return func(row []any) (bool, error) {
		if c == w.size.Channels {
			t, c = t+1, 0
		}
		if t == len(w.teams) {
			return false, nil
		}
		id := reference.ChannelID(t, c)
		x, ok := w.world.Channel(id)
		if !ok || x.ID != id {
			return false, fmt.Errorf("%w: channel %d of team %s", errWorldIDs, c, w.teams[t])
		}
		created, err := time.Parse(time.RFC3339, x.Created)
		if err != nil {
			return false, fmt.Errorf("channel %s: created: %w", x.ID, err)
		}
		c++
		row[0], row[1], row[2], row[3], row[4], row[5] = x.Team, x.ID, x.Name, x.Topic, x.Purpose, x.IsPrivate
		row[6], row[7], row[8], row[9], row[10] = x.IsArchived, created, x.Creator, int32(x.MemberCount), x.Updated
		return true, nil
	}
}

// membershipRows gives each team's memberships ordered by channel, then user: the primary
// key's order, so that the key grows at its right edge instead of splitting pages all over
// (the 32k world's memberships went in in 2.0 s this way, 3.4 s in the world's user order).
// The world draws them user by user, so each team's are first sorted by counting: the
// world's member counts place every channel's run, and a walk of the users fills the runs in
// user order. That holds 4 bytes a membership and the team's user IDs: about 35 MB at giant.
// Each membership is at the world's base version, 1 (the reference origin has no other).
func (w *worldRows) membershipRows() func([]any) (bool, error) {
	t := -1
	var (
		users, channels []string
		start           []int   // channel c's members are members[start[c]:start[c+1]]
		members         []int32 // user indices
		c, i            int
	)
	load := func() error {
		team := w.teams[t]
		users, channels = w.ids('U', t, w.size.Users), w.ids('C', t, w.size.Channels)
		start = make([]int, w.size.Channels+1)
		for c, id := range channels {
			ch, ok := w.world.Channel(id)
			if !ok {
				return fmt.Errorf("%w: channel %s", errWorldIDs, id)
			}
			start[c+1] = start[c] + ch.MemberCount
		}
		if n := start[len(channels)]; cap(members) >= n {
			members = members[:n] // every element is written below: the counts are checked
		} else {
			members = make([]int32, n)
		}
		fill := append([]int(nil), start[:len(channels)]...)
		for u, uid := range users {
			ids := w.world.ChannelsOf(team, uid)
			if ids == nil {
				return fmt.Errorf("%w: user %s", errWorldIDs, uid)
			}
			for _, id := range ids {
				_, c, ok := reference.ObjectIndex('C', id)
				if !ok || c >= len(channels) || channels[c] != id {
					return fmt.Errorf("%w: channel %s of user %s", errWorldIDs, id, uid)
				}
				if fill[c] == start[c+1] {
					return fmt.Errorf("channel %s has more members than its member count %d", id, start[c+1]-start[c])
				}
				members[fill[c]] = int32(u)
				fill[c]++
			}
		}
		for c := range channels {
			if fill[c] != start[c+1] {
				return fmt.Errorf("channel %s has %d members, its member count says %d", channels[c], fill[c]-start[c], start[c+1]-start[c])
			}
		}
		c, i = 0, 0
		return nil
	}
	return func(row []any) (bool, error) {
		for t < 0 || i == len(members) {
			if t++; t == len(w.teams) {
				return false, nil
			}
			if err := load(); err != nil {
				return false, err
			}
		}
		for i == start[c+1] {
			c++
		}
		row[0], row[1], row[2], row[3] = w.teams[t], channels[c], users[members[i]], int64(1)
		i++
		return true, nil
	}
}
