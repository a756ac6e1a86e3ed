package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin/postgres"
)

// TestPostgresOriginFeedsAnEdge: `weft origin --postgres` on a database seeded with the tiny
// world feeds a `weft edge` as the reference origin does: a client boots, reads users, gets
// autocomplete answers, and a message another program inserts with SQL reaches it as an event,
// once, with its sender attached; then psql, a program of its own, writes in transactions of
// its own, and the client gets each committed change once, in commit order, and no rolled-back
// one.
func TestPostgresOriginFeedsAnEdge(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t, "e2e")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	testkit.OK(t, err)
	defer pool.Close()
	err = run(ctx, []string{"origin", "seed", "--postgres", dsn, "--size", "tiny", "--log-level", "error"}, io.Discard)
	testkit.True(t, err != nil && strings.Contains(err.Error(), "weft origin migrate"), "seeding before migrating: %v", err)
	var printed strings.Builder
	testkit.OK(t, run(ctx, []string{"origin", "migrate", "--postgres", dsn}, &printed))
	testkit.OK(t, run(ctx, []string{"origin", "migrate", "--postgres", dsn}, &printed))
	testkit.OK(t, run(ctx, []string{"origin", "seed", "--postgres", dsn, "--size", "tiny", "--log-level", "error"}, &printed))
	testkit.True(t, strings.Contains(printed.String(), "applied [1 2 3]") && strings.Contains(printed.String(), "nothing to do") &&
		strings.Contains(printed.String(), "3 teams, 60 users"), "migrate, migrate again, seed printed:\n%s", printed.String())
	printed.Reset()
	testkit.OK(t, run(ctx, []string{"origin", "seed", "--postgres", dsn, "--size", "tiny", "--if-empty", "--log-level", "error"}, &printed))
	testkit.Equal(t, printed.String(), "weft origin seed: the database has teams: left as it is (--if-empty)\n", "a seed --if-empty of a seeded database")
	err = run(ctx, []string{"origin", "seed", "--postgres", dsn, "--size", "tiny", "--log-level", "error"}, io.Discard)
	testkit.True(t, errors.Is(err, postgres.ErrTeamExists), "a second seed: %v", err)

	originURL, natsURL, stopOrigin := startOrigin(t, "--postgres", dsn, "--outbox-poll", "100ms")
	defer stopOrigin()

	edgeURL, _, stopEdge := startEdgeURLs(t, "--origin", originURL, "--nats", natsURL)
	defer stopEdge()

	// Me, and a channel of mine with another member, from the tables.
	var team, me, channel, poster, posterName string
	testkit.OK(t, pool.QueryRow(ctx, `
		SELECT a.team, a.user_id, a.channel, b.user_id, u.real_name FROM weft_memberships a
		JOIN weft_memberships b ON b.team = a.team AND b.channel = a.channel AND b.user_id <> a.user_id
		JOIN weft_users u ON u.team = b.team AND u.id = b.user_id
		JOIN weft_users m ON m.team = a.team AND m.id = a.user_id
		WHERE NOT u.deleted AND NOT m.deleted ORDER BY a.team, a.user_id, a.channel, b.user_id LIMIT 1`).
		Scan(&team, &me, &channel, &poster, &posterName))
	keys, err := token.New([]byte(testSecret))
	testkit.OK(t, err)
	tok, err := keys.Issue(team, me, time.Hour)
	testkit.OK(t, err)
	c, err := client.Dial(ctx, client.Options{URL: edgeURL, Token: tok})
	testkit.OK(t, err)
	defer c.Close()
	boot := c.Boot()
	var nUsers int
	testkit.OK(t, pool.QueryRow(ctx, `SELECT count(*) FROM weft_users WHERE team = $1`, team).Scan(&nUsers))
	testkit.True(t, boot.Self.ID == me && boot.Team.UserCount == nUsers, "boot: self %s, team %+v", boot.Self.ID, boot.Team)
	info, err := c.UsersInfo(ctx, poster)
	testkit.OK(t, err)
	testkit.True(t, len(info.Users) == 1 && info.Users[0].RealName == posterName, "users.info: %+v", info)
	first := strings.Fields(posterName)[0]
	ac, err := c.Autocomplete(ctx, client.AutocompleteQuery{Query: first[:min(3, len(first))]})
	testkit.OK(t, err)
	found := false
	for _, r := range ac {
		found = found || r.ID == poster
	}
	testkit.True(t, found, "autocomplete %q finds %s: %+v", first[:min(3, len(first))], poster, ac)

	// A message inserted by another program, with SQL.
	var seq int64
	testkit.OK(t, pool.QueryRow(ctx, `INSERT INTO weft_messages (team, channel, user_id, text) VALUES ($1, $2, $3, 'from SQL') RETURNING seq`,
		team, channel, poster).Scan(&seq))
	var mu sync.Mutex
	got := map[int64]int{}
	var ev *client.Event
	events := c.Events()
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		select {
		case e := <-events:
			mu.Lock()
			got[e.Seq]++
			mu.Unlock()
			if e.Seq == seq {
				ev = e
			}
		default:
		}
		return ev != nil
	}, fmt.Sprintf("the message, seq %d, at the client", seq))
	testkit.True(t, ev.Type == client.EventMessage && ev.Text == "from SQL" && ev.UserID == poster, "the event: %+v", ev)
	mu.Lock()
	testkit.Equal(t, got[seq], 1, "times the message was handed over")
	mu.Unlock()
	u, ok := c.User(poster)
	testkit.True(t, ok && u.RealName == posterName, "the sender in the client's store: %+v", u)

	// Another program, psql, writes in transactions of its own: ten messages, one transaction
	// that rolls back, and an edit of the poster. The client gets each committed change once,
	// in the order they committed, and never the rolled-back one.
	script := fmt.Sprintf(`\set ON_ERROR_STOP on
INSERT INTO weft_messages (team, channel, user_id, text) SELECT '%[1]s', '%[2]s', '%[3]s', 'psql ' || n FROM generate_series(1, 5) n;
BEGIN;
INSERT INTO weft_messages (team, channel, user_id, text) VALUES ('%[1]s', '%[2]s', '%[3]s', 'rolled back');
ROLLBACK;
INSERT INTO weft_messages (team, channel, user_id, text) SELECT '%[1]s', '%[2]s', '%[3]s', 'psql ' || n FROM generate_series(6, 10) n;
UPDATE weft_users SET title = 'Written by psql' WHERE team = '%[1]s' AND id = '%[3]s';
`, team, channel, poster)
	psql := exec.CommandContext(ctx, "psql", "--no-psqlrc", "--quiet", "--dbname", dsn)
	psql.Stdin = strings.NewReader(script)
	out, err := psql.CombinedOutput()
	testkit.True(t, err == nil, "psql: %v\n%s", err, out)
	var texts []string
	lastSeq := seq
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		select {
		case e := <-events:
			mu.Lock()
			got[e.Seq]++
			mu.Unlock()
			if e.Seq <= lastSeq {
				t.Fatalf("seq %d after %d", e.Seq, lastSeq)
			}
			lastSeq = e.Seq
			if e.Type == client.EventMessage {
				texts = append(texts, e.Text)
			}
			return e.Type == client.EventUserChange && e.User != nil && e.User.ID == poster
		default:
			return false
		}
	}, "psql's changes at the client")
	want := []string{}
	for n := 1; n <= 10; n++ {
		want = append(want, fmt.Sprintf("psql %d", n))
	}
	testkit.Equal(t, texts, want, "psql's messages at the client, in order")
	u, ok = c.User(poster)
	testkit.True(t, ok && u.Title == "Written by psql", "the poster in the client's store after psql's edit: %+v", u)
}

// startOrigin runs `weft origin` with args (on free loopback ports, an embedded NATS) in this
// process until stop, which waits for its end; it returns the origin's base URL and NATS URL.
func startOrigin(tb testing.TB, args ...string) (originURL, natsURL string, stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"origin", "--addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--log-level", "error"}, args...), &out)
	}()
	testkit.EventuallyOr(tb, 30*time.Second, func() bool {
		select {
		case err := <-done:
			cancel()
			tb.Fatalf("weft origin exited: %v\n%s", err, out.String())
		default:
		}
		if m := regexp.MustCompile(`(?m)^  origin  (http://[^/]+)/`).FindStringSubmatch(out.String()); m != nil {
			originURL = m[1]
		}
		if m := regexp.MustCompile(`(?m)^  nats    (\S+)$`).FindStringSubmatch(out.String()); m != nil {
			natsURL = m[1]
		}
		return originURL != "" && natsURL != ""
	}, "weft origin to print its URLs", func() { tb.Logf("it printed:\n%s", out.String()) })
	return originURL, natsURL, func() {
		cancel()
		select {
		case err := <-done:
			testkit.OK(tb, err)
		case <-time.After(30 * time.Second):
			tb.Error("weft origin did not stop")
		}
	}
}

// TestDevOnPostgres: `weft dev --postgres` migrates an empty database, seeds it with the world
// of --size and serves the tokens it prints from it; run again on the same database it seeds
// nothing. Synthetic activity, which this origin does not make, is refused rather than ignored.
func TestDevOnPostgres(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t, "dev")
	out := devServesPrintedToken(t, "--postgres", dsn)
	testkit.True(t, strings.Contains(out, "3 teams (seeded with the tiny world in") && strings.Contains(out, "no synthetic activity"),
		"the first run's banner:\n%s", out)
	out = devServesPrintedToken(t, "--postgres", dsn, "--edges", "2")
	testkit.True(t, strings.Contains(out, ": 3 teams, no synthetic activity, 2 edges behind a proxy"), "the second run's banner:\n%s", out)
	err := run(context.Background(), []string{"dev", "--postgres", dsn, "--rate", "5", "--addr", "127.0.0.1:0", "--origin-addr", "127.0.0.1:0",
		"--nats-addr", "127.0.0.1:0", "--log-level", "error"}, io.Discard)
	testkit.True(t, err != nil && strings.Contains(err.Error(), "--rate 0 with --postgres"), "--rate 5 with --postgres: %v", err)
	err = run(context.Background(), []string{"origin", "--postgres", dsn, "--max-partitions", "65", "--addr", "127.0.0.1:0",
		"--nats-addr", "127.0.0.1:0", "--log-level", "error"}, io.Discard)
	testkit.True(t, err != nil && strings.Contains(err.Error(), "--max-partitions: want 1 to 64, got 65"), "--max-partitions 65: %v", err)
}

// TestPostgresOriginStopsWithAStalledStream: an edge that asked for a streamed listing and
// stopped reading does not hold the origin's stop: at the end of its 5-s window the server
// closes the connection, the listing's statement ends and the pool closes, well before the
// answer's write timeout (30 s) would have ended the listing by itself.
func TestPostgresOriginStopsWithAStalledStream(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t).CreateDB(t, "stall")
	testkit.OK(t, run(ctx, []string{"origin", "migrate", "--postgres", dsn}, io.Discard))
	pool, err := pgxpool.New(ctx, dsn)
	testkit.OK(t, err)
	defer pool.Close()
	// Enough rows that the answer fills the loopback's socket buffers many times over.
	_, err = pool.Exec(ctx, `INSERT INTO weft_teams (id, name) VALUES ('T1', 'one');
		SET weft.seeding = on;
		INSERT INTO weft_users (team, id, name, title) SELECT 'T1', 'U' || lpad(n::text, 7, '0'), 'u' || n, repeat('x', 1000)
			FROM generate_series(1, 60000) n`)
	testkit.OK(t, err)
	originURL, _, stop := startOrigin(t, "--postgres", dsn)
	conn, err := net.Dial("tcp", strings.TrimPrefix(originURL, "http://"))
	testkit.OK(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /origin/v1/teams/T1/users?stream=1&limit=1000 HTTP/1.1\r\nHost: origin\r\n\r\n")
	testkit.OK(t, err)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { // the listing runs, and nothing reads it
		var running int
		return pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT id, team%' AND state <> 'idle'`).Scan(&running) == nil && running == 1
	}, "the streamed listing's statement to run")
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("weft origin still stopping after 20 s, with one edge not reading its stream")
	}
}
