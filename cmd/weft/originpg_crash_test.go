package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/pubsub"
)

// The origin on PostgreSQL losing its process, or its database, under a steady write load:
// every committed change reaches the stream exactly once, in seq order, with no gap, and a
// change that rolled back publishes nothing.

const crashSeedSQL = `
INSERT INTO weft_teams (id, name) VALUES ('T1', 'One'), ('T2', 'Two');
INSERT INTO weft_users (team, id, name) VALUES ('T1', 'U1', 'ada'), ('T2', 'U2', 'bob');
INSERT INTO weft_channels (team, id, name) VALUES ('T1', 'C1', 'general'), ('T2', 'C2', 'general');
INSERT INTO weft_memberships (team, channel, user_id) VALUES ('T1', 'C1', 'U1'), ('T2', 'C2', 'U2');`

// crashRig is a migrated database, a NATS server whose stream forgets message IDs after 100 ms, JetStream's least
// (so a repeated publish would be stored twice and seen), and a steady writer.
type crashRig struct {
	pool *pgxpool.Pool
	dsn  string
	nats *pubsub.Embedded
	bus  *pubsub.Bus

	mu        sync.Mutex
	committed map[string]bool // texts of messages whose commit succeeded
	unsure    map[string]bool // texts whose commit's outcome was lost with the connection
}

func newCrashRig(t *testing.T, srv *pgtest.Server) *crashRig {
	t.Helper()
	r := &crashRig{dsn: srv.CreateDB(t, "crash"), committed: map[string]bool{}, unsure: map[string]bool{}}
	var err error
	r.pool, err = pgxpool.New(context.Background(), r.dsn)
	testkit.OK(t, err)
	t.Cleanup(r.pool.Close)
	_, err = postgres.Migrate(context.Background(), r.pool)
	testkit.OK(t, err)
	_, err = r.pool.Exec(context.Background(), crashSeedSQL)
	testkit.OK(t, err)
	r.nats = backend.ListeningNATS(t)
	r.bus = backend.Bus(t, r.nats, pubsub.Config{Stream: pubsub.StreamConfig{DuplicateWindow: pubsub.MinDuplicateWindow}})
	return r
}

// write commits messages to both teams, one transaction each, until ctx ends; every fourth
// transaction rolls back instead. Failures (the database restarting) are retried.
func (r *crashRig) write(ctx context.Context) {
	// Paced by a ticker: ~400 changes a second over both teams, and the pace of the retries
	// while the database restarts.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		team, channel, user := "T1", "C1", "U1"
		if i%3 == 2 {
			team, channel, user = "T2", "C2", "U2"
		}
		text := fmt.Sprintf("m%d", i)
		rollback := i%4 == 3
		if rollback {
			text = fmt.Sprintf("rolled back %d", i)
		}
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO weft_messages (team, channel, user_id, text) VALUES ($1, $2, $3, $4)`, team, channel, user, text); err != nil {
				return err
			}
			if rollback {
				return errRollBack
			}
			return nil
		})
		r.mu.Lock()
		switch {
		case err == nil:
			r.committed[text] = true
		case !errors.Is(err, errRollBack) && ctx.Err() == nil:
			r.unsure[text] = true // it may have committed before the connection went
		}
		r.mu.Unlock()
	}
}

var errRollBack = errors.New("roll back")

// origin starts `weft origin --postgres` as a process of its own (this test binary re-executed
// as weft), and returns, once it serves, a func that kills it (SIGKILL) and waits for its end.
func (r *crashRig) origin(t *testing.T) (kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "origin", "--postgres", r.dsn, "--nats", r.nats.ClientURL(), "--addr", "127.0.0.1:0",
		"--outbox-poll", "50ms", "--log-level", "error")
	cmd.Env = append(os.Environ(), "WEFT_CLITEST_RUN_MAIN=1")
	var out testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	testkit.OK(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	testkit.EventuallyOr(t, 30*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("weft origin --postgres exited:\n%s", out.String())
		default:
		}
		return regexp.MustCompile(`(?m)^  origin  http://`).MatchString(out.String())
	}, "weft origin --postgres to serve", func() { t.Logf("it printed:\n%s", out.String()) })
	return func() {
		testkit.OK(t, cmd.Process.Signal(syscall.SIGKILL))
		<-exited
	}
}

// lastSeq is a team's stream tail.
func (r *crashRig) lastSeq(t *testing.T, team string) int64 {
	t.Helper()
	seq, err := r.bus.LastSeq(context.Background(), team)
	testkit.OK(t, err)
	return seq
}

// check waits for the stream to catch up with the tables, then holds it to them: for each
// team, seqs 1…seq each once and in order, each message committed once, none rolled back.
func (r *crashRig) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	seen := map[string]int{}
	for _, team := range []string{"T1", "T2"} {
		var want int64
		testkit.OK(t, r.pool.QueryRow(ctx, `SELECT seq FROM weft_teams WHERE id = $1`, team).Scan(&want))
		testkit.EventuallyWithin(t, 60*time.Second, func() bool { return r.lastSeq(t, team) >= want },
			fmt.Sprintf("%s's stream to reach seq %d", team, want))
		next := int64(1)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := r.bus.Replay(rctx, team, 0, want, func(ev *origin.Event) error {
			if ev.Seq != next {
				return fmt.Errorf("%s: seq %d where %d should be", team, ev.Seq, next)
			}
			next++
			if ev.Type == origin.EventMessage {
				seen[ev.Text]++
			}
			return nil
		})
		cancel()
		testkit.OK(t, err)
		testkit.Equal(t, next-1, want, team+"'s events in the stream")
		testkit.Equal(t, r.lastSeq(t, team), want, team+"'s stream tail: nothing past the tables")
	}
	// The tables are the truth: what they hold is what committed.
	table := map[string]bool{}
	rows, err := r.pool.Query(ctx, `SELECT text FROM weft_messages`)
	testkit.OK(t, err)
	for rows.Next() {
		var text string
		testkit.OK(t, rows.Scan(&text))
		table[text] = true
	}
	testkit.OK(t, rows.Err())
	r.mu.Lock()
	defer r.mu.Unlock()
	for text := range r.committed {
		if !table[text] {
			t.Errorf("%q was committed but is not in the table", text)
		}
	}
	for text := range table {
		if seen[text] != 1 {
			t.Errorf("%q is in the table, and in the stream %d times", text, seen[text])
		}
	}
	for text, n := range seen {
		if !table[text] {
			t.Errorf("%q is in the stream %d times but not in the table (rolled back?)", text, n)
		}
	}
	t.Logf("%d messages committed (%d of them with their commit's answer lost), each in the stream once", len(table), len(r.unsure))
}

// TestPostgresPublisherKilledUnderLoad kills the origin's process (SIGKILL) 20 times at random
// points while changes commit, starting a new one each time.
func TestPostgresPublisherKilledUnderLoad(t *testing.T) {
	r := newCrashRig(t, pgtest.Start(t))
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.write(ctx) })
	for i := range 20 {
		before := r.lastSeq(t, "T1")
		kill := r.origin(t)
		// Let it publish some, then kill it anywhere in the next stretch of work.
		testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.lastSeq(t, "T1") > before }, fmt.Sprintf("life %d to publish", i+1))
		for range rand.N(40) {
			_ = r.lastSeq(t, "T1") // a random amount of work: a round trip each
		}
		kill()
	}
	stop()
	wg.Wait()
	r.origin(t)
	r.check(t)
}

// TestPostgresRestartedUnderLoad restarts PostgreSQL under the origin and the writer: the
// origin reconnects and publishes the rest, and nothing is lost or repeated.
func TestPostgresRestartedUnderLoad(t *testing.T) {
	srv := pgtest.Start(t)
	r := newCrashRig(t, srv)
	r.origin(t)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.write(ctx) })
	for range 2 {
		before := r.lastSeq(t, "T1")
		testkit.EventuallyWithin(t, 30*time.Second, func() bool { return r.lastSeq(t, "T1") > before+20 }, "publishing before the restart")
		srv.Restart(t)
	}
	before := r.lastSeq(t, "T1")
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return r.lastSeq(t, "T1") > before+20 }, "publishing after the restart")
	stop()
	wg.Wait()
	r.check(t)
}
