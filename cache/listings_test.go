package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/origin"
)

// The listings' newer forms (docs/origin.md, "Fewer round trips") against the first contract:
// the same store from every form, bad answers of the new forms refused, broken streams resumed.

// changeTeam makes the origin's team differ from its world: a created and a deleted channel,
// a leave, a join and a profile change, so every form lists the overlay too.
func changeTeam(t *testing.T, o *backend.Origin, team string) {
	t.Helper()
	ctx := context.Background()
	users, chans := o.Users(team), o.Channels(team)
	must := func(_ *origin.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(o.CreateChannel(ctx, team, "made-before-the-load", users[3].ID, false))
	must(o.DeleteChannel(ctx, team, chans[len(chans)-1].ID))
	of := o.ChannelsOf(team, users[1].ID)
	must(o.LeaveChannel(ctx, team, of[len(of)-1], users[1].ID))
	for _, c := range chans[1:] {
		if !c.IsPrivate && !c.IsArchived && !slices.Contains(o.ChannelsOf(team, users[2].ID), c.ID) {
			must(o.JoinChannel(ctx, team, c.ID, users[2].ID))
			break
		}
	}
	must(o.UpdateUser(ctx, team, users[4].ID, func(u *origin.User) { u.Title = "Loaded every way" }))
}

// requestLog records the query of every listing request.
type requestLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *requestLog) wrap(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !isTeamPath(r) {
		l.mu.Lock()
		l.queries = append(l.queries, r.URL.RawQuery)
		l.mu.Unlock()
	}
	next.ServeHTTP(w, r)
}

// TestListingFormsLoadTheSameStore: a load in each form (the first contract's pages, streams,
// partitions, both, and what the reference origin announces itself) gives exactly the same
// store, in the number of requests the form promises; an origin that announces nothing is
// walked page by page, without a parameter of the new forms.
func TestListingFormsLoadTheSameStore(t *testing.T) {
	for _, c := range []struct {
		size  string
		limit int
	}{{"small", 37}, {"32k", 0}} {
		t.Run(c.size, func(t *testing.T) {
			o := backend.NewOrigin(t, backend.OriginConfig{World: backend.World(t, 7, c.size),
				Client: origin.ClientConfig{PageLimit: c.limit, Timeout: time.Minute}})
			team := o.TeamIDs()[0]
			changeTeam(t, o, team)
			load := func(form wrapFunc) (string, []string) {
				t.Helper()
				var log requestLog
				if form == nil {
					o.SetWrap(log.wrap)
				} else {
					o.SetWrap(chain(log.wrap, form))
				}
				defer o.SetWrap(nil)
				st, err := cache.Snapshot(context.Background(), o.Client, team, 50_000_000)
				if err != nil {
					t.Fatal(err)
				}
				return render(t, st), log.queries
			}
			want, queries := load(firstContract)
			for _, q := range queries {
				if strings.Contains(q, "stream") || strings.Contains(q, "partition") {
					t.Fatalf("an origin of the first contract was asked %q", q)
				}
			}
			if len(queries) < 6 {
				t.Fatalf("the first contract's load took %d listing requests: the pages are too big to test paging", len(queries))
			}
			info, err := o.Client.Team(context.Background(), team)
			if err != nil || info.Listings == nil {
				t.Fatalf("the reference origin announces no listing forms: %+v %v", info, err)
			}
			p := info.Listings.Partitions
			parts := origin.ListingPartitions{Users: 3, Channels: 4, Memberships: 7}
			for _, f := range []struct {
				name     string
				wrap     wrapFunc
				requests int  // listing requests; 0: more than one a partition
				small    bool // on the small world only: 32k loads cost seconds each under -race
			}{
				{"as announced", nil, max(p.Users, 1) + max(p.Channels, 1) + max(p.Memberships, 1), false},
				{"streams", announce(&origin.Listings{Stream: true}), 3, true},
				{"partitions", announce(&origin.Listings{Partitions: parts}), 0, false},
				{"partitioned streams", announce(&origin.Listings{Stream: true, Partitions: parts}), 3 + 4 + 7, true},
			} {
				if f.small && c.size != "small" {
					continue
				}
				got, queries := load(f.wrap)
				if got != want {
					t.Fatalf("%s: the store differs from the first contract's:\n%s", f.name, firstDiff(got, want))
				}
				if f.requests > 0 && len(queries) != f.requests {
					t.Fatalf("%s: %d listing requests, want %d: %q", f.name, len(queries), f.requests, queries)
				}
			}
		})
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got  %.300s\n want %.300s", i, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g), len(w))
}

// partitionAs answers requests for partition from of listings ending in suffix with partition
// to's rows: two partitions that overlap.
func partitionAs(suffix, from, to string) wrapFunc {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if q := r.URL.Query(); strings.HasSuffix(r.URL.Path, suffix) && q.Get("partition") == from {
			q.Set("partition", to)
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	}
}

// endless answers streamed requests of partition 1 of listings ending in suffix with pages of
// rows memberships each, cursors from cursor(i), until the edge goes away.
func endless(suffix string, rows int, cursor func(i int) string) wrapFunc {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasSuffix(r.URL.Path, suffix) || r.URL.Query().Get("partition") != "1" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", origin.StreamType)
		for i := 0; r.Context().Err() == nil; i++ {
			var b bytes.Buffer
			b.WriteString(`{"memberships":[`)
			for k := range rows {
				if k > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"channel":"C%d","user":"U%d","updated":1}`, i, k)
			}
			fmt.Fprintf(&b, `],"next_cursor":%q}`+"\n", cursor(i))
			if _, err := w.Write(b.Bytes()); err != nil {
				return
			}
		}
	}
}

// rewriteStream serves the origin's streamed answers of listings ending in suffix rewritten by
// fix, ending cleanly (with a Content-Length): a stream the origin meant to send that way.
func rewriteStream(suffix string, fix func([]byte) []byte) wrapFunc {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasSuffix(r.URL.Path, suffix) || r.URL.Query().Get("stream") != "1" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := fix(rec.Body.Bytes())
		w.Header().Set("Content-Type", origin.StreamType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

// TestBadListingFormsAreRefused: what an origin of the new forms must not send is refused
// with a bad answer that says what was wrong, leaves nothing loaded, and changes no other team.
func TestBadListingFormsAreRefused(t *testing.T) {
	s := newStack(t, stackOpts{pageLimit: 5, cache: func(c *cache.Config) { c.MaxMemberships = 5000 }})
	ctx := context.Background()
	ids := s.origin.TeamIDs()
	warm, err := s.teams.Acquire(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Release()
	before := render(t, warm.Store())
	victim := ids[1]
	streams := announce(&origin.Listings{Stream: true})
	cases := []struct {
		name, want string
		wrap       wrapFunc
	}{
		{"partitions beyond the cap", "65 partitions of memberships",
			announce(&origin.Listings{Stream: true, Partitions: origin.ListingPartitions{Memberships: 65}})},
		{"overlapping partitions of users", "listed twice",
			chain(partitionAs("/users", "1", "0"), announce(&origin.Listings{Stream: true, Partitions: origin.ListingPartitions{Users: 2}}))},
		{"overlapping partitions of memberships", "listed twice",
			chain(partitionAs("/memberships", "2", "1"), announce(&origin.Listings{Partitions: origin.ListingPartitions{Memberships: 3}}))},
		{"a partition that never ends", "passed 5000 rows",
			chain(endless("/memberships", 5, func(i int) string { return fmt.Sprint("p", i) }),
				announce(&origin.Listings{Stream: true, Partitions: origin.ListingPartitions{Memberships: 2}}))},
		{"a partition of empty pages", "keeps sending empty pages",
			chain(endless("/memberships", 0, func(i int) string { return fmt.Sprint("p", i) }),
				announce(&origin.Listings{Stream: true, Partitions: origin.ListingPartitions{Memberships: 2}}))},
		{"a partition that repeats a cursor", "repeats cursor",
			chain(endless("/memberships", 1, func(int) string { return "same" }),
				announce(&origin.Listings{Stream: true, Partitions: origin.ListingPartitions{Memberships: 2}}))},
		{"a truncated stream", "truncated", chain(rewriteStream("/users", func(b []byte) []byte {
			last := bytes.LastIndexByte(b[:len(b)-1], '\n')
			return b[:last+20] // in the middle of the last page
		}), streams)},
		{"a stream that goes on after its last page", "after its last page", chain(rewriteStream("/channels", func(b []byte) []byte {
			return append(b, b...)
		}), streams)},
		{"a stream without a page", "without a page", chain(rewriteStream("/memberships", func([]byte) []byte { return nil }), streams)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.setWrap(c.wrap)
			defer s.setWrap(nil)
			_, err := s.teams.Acquire(ctx, victim)
			if !errors.Is(err, origin.ErrBadResponse) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("load: %v, want a bad response saying %q", err, c.want)
			}
			if s.teams.Lookup(victim) != nil {
				t.Fatal("a refused load left a team behind")
			}
			if after := render(t, warm.Store()); after != before {
				t.Fatal("a bad load of another team changed a cached team")
			}
		})
	}
	tm, err := s.teams.Acquire(ctx, victim)
	if err != nil {
		t.Fatalf("clean load after the bad ones: %v", err)
	}
	tm.Release()
	matchOrigin(t, s, victim)
}

// breakAfter cuts the connection under the first streamed answer of listings ending in
// suffix after pages pages (0: before any).
func breakAfter(suffix string, pages int) (wrapFunc, *[]string) {
	var mu sync.Mutex
	var broken bool
	var cursors []string
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasSuffix(r.URL.Path, suffix) {
			next.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		cursors = append(cursors, r.URL.Query().Get("cursor"))
		first := !broken
		broken = true
		mu.Unlock()
		if first {
			w = &breakingWriter{ResponseWriter: w, left: pages}
		}
		next.ServeHTTP(w, r)
	}, &cursors
}

// breakingWriter lets left writes through (a streamed page each), then drops the connection.
type breakingWriter struct {
	http.ResponseWriter
	left int
}

func (b *breakingWriter) Write(p []byte) (int, error) {
	if b.left == 0 {
		// The answer's head first: a connection closed before it is one the transport retries.
		http.NewResponseController(b.ResponseWriter).Flush()
		panic(http.ErrAbortHandler) // net/http closes the connection without ending the body
	}
	b.left--
	n, err := b.ResponseWriter.Write(p)
	http.NewResponseController(b.ResponseWriter).Flush()
	return n, err
}

func (b *breakingWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// TestBrokenStreamResumes: a stream cut after some pages goes on from the last page that
// arrived whole, in a second request, and the load is complete (a row delivered twice would be
// refused); a stream cut before its first page fails the load, which a later load retries.
func TestBrokenStreamResumes(t *testing.T) {
	s := newStack(t, stackOpts{pageLimit: 3})
	ids := s.origin.TeamIDs()
	wrap, cursors := breakAfter("/memberships", 2)
	s.setWrap(chain(wrap, announce(&origin.Listings{Stream: true})))
	tm, err := s.teams.Acquire(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	tm.Release()
	matchOrigin(t, s, ids[0])
	if len(*cursors) != 2 || (*cursors)[0] != "" || (*cursors)[1] == "" {
		t.Fatalf("memberships asked from cursors %q: want the start, then the cursor of the second page", *cursors)
	}

	wrap, cursors = breakAfter("/users", 0)
	s.setWrap(chain(wrap, announce(&origin.Listings{Stream: true})))
	if _, err := s.teams.Acquire(context.Background(), ids[1]); !errors.Is(err, origin.ErrUnavailable) {
		t.Fatalf("a stream cut before its first page: %v, want ErrUnavailable", err)
	}
	if len(*cursors) != 1 {
		t.Fatalf("users asked %d times, want once (no retry without progress)", len(*cursors))
	}
	tm, err = s.teams.Acquire(context.Background(), ids[1])
	if err != nil {
		t.Fatal(err)
	}
	tm.Release()
	matchOrigin(t, s, ids[1])
}
