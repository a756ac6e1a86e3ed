package postgres_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/postgres"
	"github.com/weft-edge/weft/origin/reference"
)

// TestStreamsArePages: each listing streamed (stream=1) is the same rows, in the same order and
// pages, as walked a page per request; a streamed answer ends after its bound of rows, and the
// walk goes on from its last cursor, so the number of answers is the rows over the bound.
func TestStreamsArePages(t *testing.T) {
	ctx := context.Background()
	pool := seedDB(t)
	w := world(t, "tiny", 3)
	_, err := postgres.Seed(ctx, pool, w, nil)
	testkit.OK(t, err)
	var requests atomic.Int64
	// 7 rows an answer at 3 a page is 2 whole pages: 6.
	pg := postgres.NewServer(pool, postgres.Config{StreamRows: 7})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		pg.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	c, err := origin.NewClient(origin.ClientConfig{BaseURL: srv.URL})
	testkit.OK(t, err)
	team := w.TeamIDs()[0]
	info, err := c.Team(ctx, team)
	testkit.OK(t, err)
	testkit.True(t, info.Listings != nil && info.Listings.Stream && info.Listings.Partitions == origin.ListingPartitions{Users: 1, Channels: 1, Memberships: 1},
		"the team's answer announces streams, and no partitions by default: %+v", info.Listings)

	const limit, perAnswer = 3, 6
	walk := func(name string, list func(r origin.ListRequest, rows func(n int, next string)) error) {
		t.Helper()
		type page struct {
			n    int
			next string
		}
		// The whole listing, request after request from the last page's cursor, as an edge
		// walks it.
		all := func(stream bool) (pages []page) {
			for r := (origin.ListRequest{Limit: limit, Stream: stream}); ; {
				testkit.OK(t, list(r, func(n int, next string) { pages = append(pages, page{n, next}) }))
				if r.Cursor = pages[len(pages)-1].next; r.Cursor == "" {
					return pages
				}
			}
		}
		requests.Store(0)
		paged := all(false)
		pagedRequests := requests.Swap(0)
		streamed := all(true)
		testkit.Equal(t, streamed, paged, name+": streamed pages")
		rows := 0
		for i, p := range paged {
			rows += p.n
			testkit.True(t, p.n == limit || i == len(paged)-1 && p.next == "", "%s: page %d of %d has %d rows", name, i, len(paged), p.n)
		}
		testkit.True(t, rows > perAnswer, "%s: %d rows, more than one answer's", name, rows)
		testkit.Equal(t, pagedRequests, int64(len(paged)), name+": requests a page each")
		testkit.Equal(t, requests.Load(), int64((rows+perAnswer-1)/perAnswer), name+": streamed answers")
	}
	var users, streamedUsers []string
	walk("users", func(r origin.ListRequest, rows func(int, string)) error {
		return c.ListUsers(ctx, team, r, func(p *origin.UsersPage) error {
			for _, u := range p.Users {
				if r.Stream {
					streamedUsers = append(streamedUsers, u.ID)
				} else {
					users = append(users, u.ID)
				}
			}
			rows(len(p.Users), p.NextCursor)
			return nil
		})
	})
	testkit.Equal(t, streamedUsers, users, "users, streamed")
	testkit.True(t, slices.IsSorted(users) && len(users) == w.Size().Users, "users in key order, all of them: %d", len(users))
	walk("channels", func(r origin.ListRequest, rows func(int, string)) error {
		return c.ListChannels(ctx, team, r, func(p *origin.ChannelsPage) error { rows(len(p.Channels), p.NextCursor); return nil })
	})
	var ms []string
	walk("memberships", func(r origin.ListRequest, rows func(int, string)) error {
		return c.ListMemberships(ctx, team, r, func(p *origin.MembershipsPage) error {
			for _, m := range p.Memberships {
				if r.Stream {
					ms = append(ms, m.Channel+"/"+m.User)
				}
			}
			rows(len(p.Memberships), p.NextCursor)
			return nil
		})
	})
	testkit.Equal(t, int64(len(ms)), w.MembershipCount(team), "memberships streamed")
}

// TestListingRequestsRefused: what this origin cannot read (a partition out of range, a cursor
// not its own) is a 400 with the reason, and an unknown team a 404, in either form.
func TestListingRequestsRefused(t *testing.T) {
	cursor := func(parts ...string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
	}
	pool := database(t)
	exec(t, pool, seedSQL)
	srv := httptest.NewServer(postgres.NewServer(pool, postgres.Config{}))
	t.Cleanup(srv.Close)
	for query, want := range map[string]string{
		"/T1/users?stream=2":                            "400 invalid_request",
		"/T1/users?partition=2&partitions=2":            "400 invalid_partition",
		"/T1/users?partition=0&partitions=65":           "400 invalid_partition",
		"/T1/users?partition=-1&partitions=2":           "400 invalid_partition",
		"/T1/users?partition=x&partitions=2":            "400 invalid_partition",
		"/T1/users?partition=1&partitions=2":            "200 ",
		"/T1/users?cursor=" + cursor("9", "U1", "5"):    "400 invalid_cursor",
		"/T1/users?cursor=" + cursor("-1", "U1", "5"):   "400 invalid_cursor",
		"/T1/users?cursor=" + cursor("0", "U1", "1025"): "400 invalid_cursor",
		"/T1/users?cursor=" + cursor("a", "U1", "5"):    "400 invalid_cursor",
		"/T1/users?cursor=" + cursor("0", "U1", "5"):    "200 ",
		"/T1/memberships?cursor=" + cursor("C1"):        "400 invalid_cursor",
		"/T1/channels?partition=0":                      "400 invalid_partition",
		"/T1/memberships?limit=0":                       "400 invalid_limit",
		"/T1/memberships?cursor=%21%21":                 "400 invalid_cursor",
		"/T1/users?cursor=" + strings.Repeat("A", 5000): "400 invalid_cursor",
		"/T404/users?stream=1":                          "404 team_not_found",
		"/T1/users?partition=0&partitions=1":            "200 ",
	} {
		resp, err := http.Get(srv.URL + "/origin/v1/teams" + query)
		testkit.OK(t, err)
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body) // a page has no error
		resp.Body.Close()
		testkit.Equal(t, fmt.Sprintf("%d %s", resp.StatusCode, body.Error), want, query)
	}
}

// TestSnapshotIsTheWorld: the whole-team body of the origin on PostgreSQL, seeded with a world,
// is the reference origin's body for that world, object for object (the listings' orders
// differ: each is sorted by its own key).
func TestSnapshotIsTheWorld(t *testing.T) {
	ctx := context.Background()
	pool := seedDB(t)
	w := world(t, "tiny", 5)
	_, err := postgres.Seed(ctx, pool, w, nil)
	testkit.OK(t, err)
	ref, err := reference.NewServer(reference.ServerConfig{World: w})
	testkit.OK(t, err)
	pgSrv := httptest.NewServer(postgres.NewServer(pool, postgres.Config{}))
	t.Cleanup(pgSrv.Close)
	refSrv := httptest.NewServer(ref)
	t.Cleanup(refSrv.Close)
	type snapshot struct {
		Team        origin.Team         `json:"team"`
		Seq         int64               `json:"seq"`
		Users       []origin.User       `json:"users"`
		Channels    []origin.Channel    `json:"channels"`
		Memberships []origin.Membership `json:"memberships"`
	}
	get := func(base, team string) (snapshot, int) {
		resp, err := http.Get(base + "/origin/v1/teams/" + team + "/snapshot")
		testkit.OK(t, err)
		defer resp.Body.Close()
		var s snapshot
		if resp.StatusCode == http.StatusOK {
			dec := json.NewDecoder(resp.Body)
			dec.DisallowUnknownFields()
			testkit.OK(t, dec.Decode(&s))
		}
		slices.SortFunc(s.Memberships, func(a, b origin.Membership) int {
			return cmp.Or(strings.Compare(a.Channel, b.Channel), strings.Compare(a.User, b.User))
		})
		return s, resp.StatusCode
	}
	for _, team := range w.TeamIDs() {
		got, code := get(pgSrv.URL, team)
		want, _ := get(refSrv.URL, team)
		testkit.Equal(t, code, http.StatusOK, "status")
		testkit.True(t, len(got.Users) == w.Size().Users && len(got.Memberships) == int(w.MembershipCount(team)), "%s: %d users, %d memberships", team, len(got.Users), len(got.Memberships))
		testkit.Equal(t, got, want, "snapshot of "+team)
	}
	_, code := get(pgSrv.URL, "T404")
	testkit.Equal(t, code, http.StatusNotFound, "an unknown team's snapshot")

	// The lookups of one object, which the query scenario compares the edge with.
	team := w.TeamIDs()[1]
	c, err := origin.NewClient(origin.ClientConfig{BaseURL: pgSrv.URL})
	testkit.OK(t, err)
	for _, want := range ref.Users(team)[:5] {
		got, err := c.User(ctx, team, want.ID)
		testkit.OK(t, err)
		testkit.Equal(t, *got, want, "user "+want.ID)
	}
	want := ref.Channels(team)[2]
	ch, err := c.Channel(ctx, team, want.ID)
	testkit.OK(t, err)
	testkit.Equal(t, *ch, want, "channel "+want.ID)
	_, err = c.User(ctx, team, "U404")
	testkit.True(t, errors.Is(err, origin.ErrNotFound), "an unknown user: %v", err)
	_, err = c.Channel(ctx, "T404", want.ID)
	testkit.True(t, errors.Is(err, origin.ErrNotFound), "a channel of an unknown team: %v", err)
}

// TestPartitionsAreTheListing: the partitions of each listing, for every count asked, are
// disjoint and together the whole listing, walked a page per request or streamed; rows created
// while the partitions are walked are in at most one of them, and every row there throughout
// is in exactly one. The team announces one partition per PartitionRows rows.
func TestPartitionsAreTheListing(t *testing.T) {
	ctx := context.Background()
	pool := seedDB(t)
	w := world(t, "tiny", 9)
	_, err := postgres.Seed(ctx, pool, w, nil)
	testkit.OK(t, err)
	srv := httptest.NewServer(postgres.NewServer(pool, postgres.Config{MaxPartitions: 64, PartitionRows: 5, StreamRows: 4}))
	t.Cleanup(srv.Close)
	c, err := origin.NewClient(origin.ClientConfig{BaseURL: srv.URL})
	testkit.OK(t, err)
	team := w.TeamIDs()[0]
	info, err := c.Team(ctx, team)
	testkit.OK(t, err)
	members := int(w.MembershipCount(team))
	testkit.Equal(t, info.Listings.Partitions, origin.ListingPartitions{Users: 4, Channels: 2, Memberships: min((members+4)/5, 64)},
		fmt.Sprintf("partitions announced for %d users, 8 channels, %d memberships", w.Size().Users, members))

	// keys walks partition i of n (streamed or paged, 2 rows a page) and returns its rows' keys.
	type lister func(r origin.ListRequest, keys func(page []string, next string)) error
	walk := func(list lister, i, n int, stream bool) []string {
		var all []string
		r := origin.ListRequest{Limit: 2, Partition: i, Partitions: n, Stream: stream}
		for {
			var next string
			testkit.OK(t, list(r, func(page []string, cursor string) { all, next = append(all, page...), cursor }))
			if r.Cursor = next; next == "" {
				return all
			}
		}
	}
	listings := map[string]lister{
		"users": func(r origin.ListRequest, keys func([]string, string)) error {
			return c.ListUsers(ctx, team, r, func(p *origin.UsersPage) error {
				var ks []string
				for _, u := range p.Users {
					ks = append(ks, u.ID)
				}
				keys(ks, p.NextCursor)
				return nil
			})
		},
		"channels": func(r origin.ListRequest, keys func([]string, string)) error {
			return c.ListChannels(ctx, team, r, func(p *origin.ChannelsPage) error {
				var ks []string
				for _, ch := range p.Channels {
					ks = append(ks, ch.ID)
				}
				keys(ks, p.NextCursor)
				return nil
			})
		},
		"memberships": func(r origin.ListRequest, keys func([]string, string)) error {
			return c.ListMemberships(ctx, team, r, func(p *origin.MembershipsPage) error {
				var ks []string
				for _, m := range p.Memberships {
					ks = append(ks, m.Channel+"/"+m.User)
				}
				keys(ks, p.NextCursor)
				return nil
			})
		},
	}
	created := 0
	for name, list := range listings {
		whole := walk(list, 0, 1, false)
		testkit.True(t, len(whole) > 5, "%s: %d rows", name, len(whole))
		for _, n := range []int{2, 3, 7, 64} {
			before := walk(list, 0, 1, false)
			seen := map[string]int{}
			nonEmpty := 0
			for i := range n {
				rows := walk(list, i, n, i%2 == 1)
				nonEmpty += min(len(rows), 1)
				for _, k := range rows {
					seen[k]++
				}
				// A user, a channel and a membership created between two partitions' walks.
				created++
				exec(t, pool, fmt.Sprintf(`INSERT INTO weft_users (team, id, name) VALUES ('%[1]s', 'UNEW%[2]d', 'new%[2]d');
					INSERT INTO weft_channels (team, id, name) VALUES ('%[1]s', 'CNEW%[2]d', 'new-%[2]d');
					INSERT INTO weft_memberships (team, channel, user_id) VALUES ('%[1]s', 'CNEW%[2]d', 'UNEW%[2]d')`, team, created))
			}
			for k, times := range seen {
				testkit.True(t, times == 1, "%s in %d partitions: %s listed %d times", name, n, k, times)
			}
			for _, k := range before {
				testkit.True(t, seen[k] == 1, "%s in %d partitions: %s, there throughout, missing", name, n, k)
			}
			after := walk(list, 0, 1, true)
			for k := range seen {
				testkit.True(t, slices.Contains(after, k), "%s in %d partitions: %s listed but not in the listing", name, n, k)
			}
			testkit.True(t, nonEmpty > 1, "%s in %d partitions: rows in %d of them", name, n, nonEmpty)
		}
	}
}

// TestStalledEdgeReleasesItsConnection: an edge that asks for a stream and stops reading (a
// network that drops packets without a reset) loses the answer once a write has waited the
// write timeout, and its database connection goes back to the pool instead of holding the
// statement and its snapshot for as long as TCP takes to give up.
func TestStalledEdgeReleasesItsConnection(t *testing.T) {
	ctx := context.Background()
	pool := database(t)
	// Enough rows that the answer fills the loopback's socket buffers many times over.
	exec(t, pool, `INSERT INTO weft_teams (id, name) VALUES ('T1', 'one')`,
		`SET weft.seeding = on`, // no events: this is about the listing
		`INSERT INTO weft_users (team, id, name, title) SELECT 'T1', 'U' || lpad(n::text, 7, '0'), 'u' || n, repeat('x', 1000)
			FROM generate_series(1, 60000) n`)
	srv := httptest.NewServer(postgres.NewServer(pool, postgres.Config{WriteTimeout: 300 * time.Millisecond}))
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	testkit.OK(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /origin/v1/teams/T1/users?stream=1&limit=1000 HTTP/1.1\r\nHost: origin\r\n\r\n")
	testkit.OK(t, err)
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return pool.Stat().AcquiredConns() == 1 }, "the stream to hold a connection")
	// Nothing is read from conn: the server's writes fill the buffers, then wait.
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return pool.Stat().AcquiredConns() == 0 }, "the stalled stream's connection back in the pool")
	var running int
	testkit.OK(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT id, team%' AND state = 'active'`).Scan(&running))
	testkit.Equal(t, running, 0, "listing statements still running")
}
