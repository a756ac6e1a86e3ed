package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/pubsub"
)

// appSchema is an application's own tables, which examples/mirror.sql puts weft in front of.
const appSchema = `
CREATE TABLE app_workspaces (id text PRIMARY KEY, title text NOT NULL, subdomain text NOT NULL);
CREATE TABLE app_people (id bigint PRIMARY KEY, workspace text NOT NULL REFERENCES app_workspaces,
	handle text NOT NULL, full_name text NOT NULL, nickname text, job_title text,
	active boolean NOT NULL DEFAULT true, bot boolean NOT NULL DEFAULT false, last_seen timestamptz);
CREATE TABLE app_rooms (id bigint PRIMARY KEY, workspace text NOT NULL REFERENCES app_workspaces, slug text NOT NULL,
	about text, private boolean NOT NULL DEFAULT false, archived boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(), created_by bigint NOT NULL REFERENCES app_people);
CREATE TABLE app_room_members (workspace text NOT NULL, room bigint NOT NULL REFERENCES app_rooms ON DELETE CASCADE,
	person bigint NOT NULL REFERENCES app_people, PRIMARY KEY (room, person));
CREATE TABLE app_posts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, workspace text NOT NULL,
	room bigint NOT NULL REFERENCES app_rooms, author bigint NOT NULL REFERENCES app_people, body text NOT NULL);

INSERT INTO app_workspaces VALUES ('W1', 'Acme', 'acme');
INSERT INTO app_people (id, workspace, handle, full_name, job_title) VALUES
	(1, 'W1', 'ann', 'Ann Archer', 'CEO'), (2, 'W1', 'ben', 'Ben Baker', NULL), (3, 'W1', 'cat', 'Cat Cole', 'Ops');
INSERT INTO app_rooms (id, workspace, slug, about, created_by) VALUES (1, 'W1', 'general', 'Everyone', 1), (2, 'W1', 'ops', NULL, 3);
INSERT INTO app_room_members VALUES ('W1', 1, 1), ('W1', 1, 2), ('W1', 1, 3), ('W1', 2, 3);`

// TestYourTables: examples/mirror.sql puts weft in front of an application's own tables. It
// copies what they hold, without events; from then on each change the
// application makes to them, in its own transactions, is published once, in commit order, as
// the event weft's own tables would make, and a change weft does not serve, or a rollback,
// publishes nothing.
func TestYourTables(t *testing.T) {
	pool := database(t)
	bus := backend.Bus(t, backend.NATS(t), pubsub.Config{})
	exec(t, pool, appSchema)
	sql, err := os.ReadFile("examples/mirror.sql")
	testkit.OK(t, err)
	exec(t, pool, string(sql))
	var users, members, generalCount int64
	testkit.OK(t, pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM weft_users WHERE team = 'W1'),
		(SELECT count(*) FROM weft_memberships WHERE team = 'W1'), (SELECT member_count FROM weft_channels WHERE team = 'W1' AND id = 'C1')`).
		Scan(&users, &members, &generalCount))
	testkit.Equal(t, [3]int64{users, members, generalCount}, [3]int64{3, 4, 3}, "users, memberships and #general's member_count after the backfill")
	testkit.Equal(t, count(t, pool, "weft_outbox"), int64(0), "events made by the backfill")

	startPublisher(t, pool, bus)
	exec(t, pool,
		`INSERT INTO app_people (id, workspace, handle, full_name, nickname) VALUES (4, 'W1', 'dan', 'Dan Drake', 'D')`,
		`UPDATE app_people SET job_title = 'CTO' WHERE id = 2`,
		`UPDATE app_people SET last_seen = now() WHERE id = 1`, // nothing weft serves: no event
		`BEGIN; INSERT INTO app_posts (workspace, room, author, body) VALUES ('W1', 1, 2, 'rolled back'); ROLLBACK`,
		`INSERT INTO app_room_members VALUES ('W1', 1, 4)`,
		`INSERT INTO app_posts (workspace, room, author, body) VALUES ('W1', 1, 4, 'hello from the app')`,
		`UPDATE app_people SET active = false WHERE id = 3`,
		`UPDATE app_rooms SET about = 'Ops and on-call' WHERE id = 2`,
		`DELETE FROM app_room_members WHERE room = 1 AND person = 2`,
		`UPDATE app_workspaces SET title = 'Acme Corp' WHERE id = 'W1'`)
	const events = 8
	waitPublished(t, bus, "W1", events)
	var got []string
	for _, ev := range streamed(t, bus, "W1", events) {
		s := ev.Type
		switch {
		case ev.User != nil:
			s += fmt.Sprintf(" %s %s title=%q deleted=%v", ev.User.ID, ev.User.Name, ev.User.Title, ev.User.Deleted)
		case ev.Channel != nil:
			s += fmt.Sprintf(" %s %q", ev.Channel.ID, ev.Channel.Purpose)
		case ev.TeamInfo != nil:
			s += " " + ev.TeamInfo.Name
		default:
			s += fmt.Sprintf(" %s %s %q", ev.UserID, ev.ChannelID, ev.Text)
		}
		got = append(got, s)
	}
	testkit.Equal(t, got, []string{
		`user_change U4 dan title="" deleted=false`,
		`user_change U2 ben title="CTO" deleted=false`,
		`member_joined U4 C1 ""`,
		`message U4 C1 "hello from the app"`,
		`user_change U3 cat title="Ops" deleted=true`,
		`channel_change C2 "Ops and on-call"`,
		`member_left U2 C1 ""`,
		`team_change Acme Corp`,
	}, "the application's changes in the stream")
	last, err := bus.LastSeq(context.Background(), "W1")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(events), "W1's last seq: nothing more")
}
