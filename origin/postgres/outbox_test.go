package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

// database is a fresh, migrated database on the test binary's PostgreSQL.
func database(t *testing.T) *pgxpool.Pool {
	t.Helper()
	dsn := pgtest.Shared(t).CreateDB(t, fmt.Sprintf("t%d", time.Now().UnixNano()))
	pool, err := pgxpool.New(context.Background(), dsn)
	testkit.OK(t, err)
	t.Cleanup(pool.Close)
	_, err = postgres.Migrate(context.Background(), pool)
	testkit.OK(t, err)
	return pool
}

// exec runs statements, each in its own transaction, as any program writing the tables would.
func exec(t *testing.T, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := pool.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// startPublisher runs a publisher from pool to bus until the test ends.
func startPublisher(t *testing.T, pool *pgxpool.Pool, bus *pubsub.Bus) *postgres.Publisher {
	t.Helper()
	p := postgres.NewPublisher(pool, bus, postgres.PublisherConfig{Poll: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		testkit.OK(t, <-done)
	})
	return p
}

// streamed reads team's events 1..upto from the stream, failing on a gap or a repeat.
func streamed(t *testing.T, bus *pubsub.Bus, team string, upto int64) []*origin.Event {
	t.Helper()
	var evs []*origin.Event
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := bus.Replay(ctx, team, 0, upto, func(ev *origin.Event) error {
		if want := int64(len(evs)) + 1; ev.Seq != want {
			return fmt.Errorf("stream seq %d where %d should be", ev.Seq, want)
		}
		evs = append(evs, ev)
		return nil
	})
	testkit.OK(t, err)
	return evs
}

func waitPublished(t *testing.T, bus *pubsub.Bus, team string, seq int64) {
	t.Helper()
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		last, err := bus.LastSeq(context.Background(), team)
		return err == nil && last >= seq
	}, fmt.Sprintf("%s's seq %d in the stream", team, seq))
}

const seedSQL = `
INSERT INTO weft_teams (id, name, domain) VALUES ('T1', 'Team One', 'one'), ('T2', 'Team Two', 'two');
INSERT INTO weft_users (team, id, name, real_name) VALUES
	('T1', 'U1', 'ada', 'Ada Lovelace'), ('T1', 'U2', 'bob', 'Bob Builder'), ('T1', 'U3', 'cy', 'Cy Young'),
	('T2', 'U9', 'zed', 'Zed Zero');
INSERT INTO weft_channels (team, id, name, creator, created) VALUES ('T1', 'C1', 'general', 'U1', '2026-01-02T03:04:05Z'),
	('T1', 'C2', 'random', 'U2', '2026-01-02T03:04:05Z'), ('T2', 'C9', 'general', 'U9', '2026-01-02T03:04:05Z');
INSERT INTO weft_memberships (team, channel, user_id) VALUES ('T1', 'C1', 'U1'), ('T1', 'C1', 'U2'), ('T1', 'C2', 'U2'),
	('T1', 'C1', 'U3'), ('T2', 'C9', 'U9');`

// TestOutboxPublishesEachCommittedChangeOnce: changes written in SQL, as another program would,
// reach the stream exactly once, in seq order, with no gap, each as the event its table's
// trigger made; a rolled-back change takes no seq and publishes nothing.
func TestOutboxPublishesEachCommittedChangeOnce(t *testing.T) {
	pool := database(t)
	bus := backend.Bus(t, backend.NATS(t), pubsub.Config{})
	exec(t, pool, seedSQL)
	p := startPublisher(t, pool, bus)

	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	testkit.OK(t, err)
	_, err = tx.Exec(ctx, `UPDATE weft_users SET title = 'never' WHERE team = 'T1' AND id = 'U1'`)
	testkit.OK(t, err)
	testkit.OK(t, tx.Rollback(ctx))
	exec(t, pool,
		`UPDATE weft_users SET title = 'Countess' WHERE team = 'T1' AND id = 'U1'`,
		`INSERT INTO weft_messages (team, channel, user_id, text, mentions) VALUES ('T1', 'C1', 'U2', 'hi <@U1>', '{U1}')`,
		`DELETE FROM weft_memberships WHERE team = 'T1' AND channel = 'C1' AND user_id = 'U3'`,
		`UPDATE weft_channels SET topic = 'all hands' WHERE team = 'T1' AND id = 'C1'`,
		`UPDATE weft_teams SET name = 'Team 1' WHERE id = 'T1'`,
		`DELETE FROM weft_channels WHERE team = 'T1' AND id = 'C2'`,
	)
	// T1: 3 users, 2 channels, 4 memberships, then the 6 changes; T2: 1 + 1 + 1.
	wantT1 := []string{"user_change", "user_change", "user_change", "channel_created", "channel_created",
		"member_joined", "member_joined", "member_joined", "member_joined",
		"user_change", "message", "member_left", "channel_change", "team_change", "channel_deleted"}
	waitPublished(t, bus, "T1", int64(len(wantT1)))
	waitPublished(t, bus, "T2", 3)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		var marked int64
		return pool.QueryRow(context.Background(), `SELECT sum(seq) FROM weft_published`).Scan(&marked) == nil && marked == int64(len(wantT1)+3)
	}, "every team marked published")
	var types []string
	for _, ev := range streamed(t, bus, "T1", int64(len(wantT1))) {
		types = append(types, ev.Type)
	}
	testkit.Equal(t, fmt.Sprint(types), fmt.Sprint(wantT1), "T1's events in the stream")
	last, err := bus.LastSeq(ctx, "T1")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(len(wantT1)), "T1's last seq: the rolled-back change took none")
	evs := streamed(t, bus, "T1", last)
	u := evs[9].User
	testkit.True(t, u != nil && u.ID == "U1" && u.Title == "Countess" && u.Updated == 11, "the user_change carries the row: %+v", u)
	msg := evs[10]
	testkit.True(t, msg.UserID == "U2" && msg.ChannelID == "C1" && msg.Text == "hi <@U1>" && slices.Equal(msg.Mentions, []string{"U1"}) && msg.TS != "",
		"the message event: %+v", msg)
	testkit.Equal(t, evs[14].ChannelID, "C2", "channel_deleted's channel (its memberships' deletion made no member_left)")
	testkit.Equal(t, testutil.ToFloat64(p.Metrics()[0]), float64(len(wantT1)+3), "events the publisher published")

	var marked int64
	testkit.OK(t, pool.QueryRow(ctx, `SELECT seq FROM weft_published WHERE team = 'T1'`).Scan(&marked))
	testkit.Equal(t, marked, last, "T1 marked published")
}

// TestConcurrentWritersGetGapFreeSeqs: writers on many connections at once get a team's seqs
// in commit order, gap-free, and the stream holds each change once.
func TestConcurrentWritersGetGapFreeSeqs(t *testing.T) {
	pool := database(t)
	bus := backend.Bus(t, backend.NATS(t), pubsub.Config{})
	exec(t, pool, seedSQL)
	startPublisher(t, pool, bus)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := pool.Exec(context.Background(),
					`INSERT INTO weft_messages (team, channel, user_id, text) VALUES ('T1', 'C1', 'U1', $1)`, fmt.Sprintf("w%d-%d", w, i))
				if err != nil {
					errs <- err
					return
				}
				if i%5 == 0 { // and some that roll back, taking no seq
					_ = pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
						if _, err := tx.Exec(context.Background(), `INSERT INTO weft_messages (team, channel, user_id, text) VALUES ('T1', 'C1', 'U1', 'rolled back')`); err != nil {
							return err
						}
						return fmt.Errorf("roll back")
					})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := int64(9 + writers*each)
	waitPublished(t, bus, "T1", total)
	texts := map[string]int{}
	for _, ev := range streamed(t, bus, "T1", total) {
		if ev.Type == "message" {
			texts[ev.Text]++
		}
	}
	testkit.Equal(t, len(texts), writers*each, "distinct messages in the stream")
	testkit.Equal(t, texts["rolled back"], 0, "rolled-back messages in the stream")
	last, err := bus.LastSeq(context.Background(), "T1")
	testkit.OK(t, err)
	testkit.Equal(t, last, total, "T1's last seq")
}

// TestPublisherResumesAfterTheStream: a publisher whose mark was lost (a crash between the
// stream's acknowledgement and the mark) starts after what the stream holds: it publishes the
// rest and repeats nothing.
func TestPublisherResumesAfterTheStream(t *testing.T) {
	pool := database(t)
	bus := backend.Bus(t, backend.NATS(t), pubsub.Config{})
	exec(t, pool, seedSQL)
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		p := postgres.NewPublisher(pool, bus, postgres.PublisherConfig{Poll: 50 * time.Millisecond})
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		testkit.EventuallyWithin(t, 30*time.Second, func() bool { // both teams' seeding published, and marked
			var marked int64
			return pool.QueryRow(context.Background(), `SELECT sum(seq) FROM weft_published`).Scan(&marked) == nil && marked == 9+3
		}, "the first publisher to publish and mark everything")
		cancel()
		testkit.OK(t, <-done)
	}()
	exec(t, pool, `UPDATE weft_published SET seq = 2 WHERE team = 'T1'`, // the lost mark
		`INSERT INTO weft_messages (team, channel, user_id, text) VALUES ('T1', 'C1', 'U1', 'after the crash')`)
	p := startPublisher(t, pool, bus)
	waitPublished(t, bus, "T1", 10)
	// The mark comes after the count: once it says 10, the count is final (a repeat of 3…9,
	// which the stream's duplicate window would hide, would show there).
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		var marked int64
		return pool.QueryRow(context.Background(), `SELECT seq FROM weft_published WHERE team = 'T1'`).Scan(&marked) == nil && marked == 10
	}, "the mark at 10")
	testkit.Equal(t, testutil.ToFloat64(p.Metrics()[0]), float64(1), "events the second publisher published")
	evs := streamed(t, bus, "T1", 10)
	testkit.Equal(t, evs[9].Text, "after the crash", "the new event")
}

// TestPagesMatchTheTables walks the three listings through weft's own origin client, a few
// rows a page, and finds the tables' rows, object for object.
func TestPagesMatchTheTables(t *testing.T) {
	pool := database(t)
	exec(t, pool, seedSQL)
	srv := httptest.NewServer(postgres.NewServer(pool, postgres.Config{Token: "svc"}))
	t.Cleanup(srv.Close)
	c, err := origin.NewClient(origin.ClientConfig{BaseURL: srv.URL, Token: "svc", PageLimit: 2})
	testkit.OK(t, err)
	ctx := context.Background()
	info, err := c.Team(ctx, "T1")
	testkit.OK(t, err)
	testkit.True(t, info.Team.Name == "Team One" && info.Team.UserCount == 3 && info.Team.ChannelCount == 2, "team: %+v", info)
	var users []origin.User
	for cursor := ""; ; {
		pg, err := c.UsersPage(ctx, "T1", cursor, 2)
		testkit.OK(t, err)
		users = append(users, pg.Users...)
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
	}
	testkit.Equal(t, len(users), 3, "users listed")
	for _, u := range users {
		var name, real string
		var updated int64
		testkit.OK(t, pool.QueryRow(ctx, `SELECT name, real_name, updated FROM weft_users WHERE team = 'T1' AND id = $1`, u.ID).Scan(&name, &real, &updated))
		testkit.True(t, u.Name == name && u.RealName == real && u.Updated == updated && u.Team == "T1", "user %s: %+v", u.ID, u)
	}
	var ms []origin.Membership
	for cursor := ""; ; {
		pg, err := c.MembershipsPage(ctx, "T1", cursor, 3)
		testkit.OK(t, err)
		ms = append(ms, pg.Memberships...)
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
	}
	testkit.Equal(t, len(ms), 4, "memberships listed")
	chs, err := c.ChannelsPage(ctx, "T1", "", 10)
	testkit.OK(t, err)
	testkit.True(t, len(chs.Channels) == 2 && chs.Channels[0].ID == "C1" && chs.Channels[0].MemberCount == 3 && chs.Channels[0].Created != "",
		"channels: %+v", chs.Channels)
	_, err = c.Team(ctx, "T404")
	testkit.True(t, err != nil, "a team that is not there: %v", err)
}

// TestWriteAPI: the reference origin's events endpoint, on the tables: each repetition one
// change with its own seq; what the database refuses changes nothing.
func TestWriteAPI(t *testing.T) {
	pool := database(t)
	exec(t, pool, seedSQL)
	srv := httptest.NewServer(postgres.NewServer(pool, postgres.Config{}))
	t.Cleanup(srv.Close)
	post := func(body string) (int, reference.EventsReply) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/origin/admin/teams/T1/events", "application/json", strings.NewReader(body))
		testkit.OK(t, err)
		defer resp.Body.Close()
		var r reference.EventsReply
		testkit.OK(t, json.NewDecoder(resp.Body).Decode(&r))
		return resp.StatusCode, r
	}
	code, r := post(`{"type":"message","channel":"C1","user":"U2","text":"hi","mentions":["U1"],"count":3}`)
	testkit.True(t, code == 200 && r.OK && r.Published == 3 && r.FirstSeq == 10 && r.LastSeq == 12, "three messages: %d %+v", code, r)
	code, r = post(`{"type":"user_change","user":"U1","title":"Chief"}`)
	testkit.True(t, code == 200 && r.LastSeq == 13, "a user change: %d %+v", code, r)
	var title string
	var updated int64
	testkit.OK(t, pool.QueryRow(context.Background(), `SELECT title, updated FROM weft_users WHERE team = 'T1' AND id = 'U1'`).Scan(&title, &updated))
	testkit.True(t, title == "Chief" && updated == 14, "the user: %q at %d", title, updated)
	for _, bad := range []string{
		`{"type":"message","channel":"C2","user":"U1","text":"not a member"}`,
		`{"type":"message","channel":"C1","user":"U404","text":"nobody"}`,
		`{"type":"user_change","user":"U404","title":"x"}`,
		`{"type":"rename","user":"U1"}`,
		`{"type":"message","channel":"C1","user":"U1"}`,
		`{"type":"message","channel":"C1","user":"U1","text":"x","unknown":1}`,
	} {
		code, r := post(bad)
		testkit.True(t, code == 400 && r.Error == "invalid_request", "%s: %d %+v", bad, code, r)
	}
	var seq int64
	testkit.OK(t, pool.QueryRow(context.Background(), `SELECT seq FROM weft_teams WHERE id = 'T1'`).Scan(&seq))
	testkit.Equal(t, seq, int64(13), "T1's seq after the refused changes")
}
