package origin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
)

// countRequests counts the requests that reach h.
func countRequests(h http.Handler, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

// listAll walks a listing from the start with r (cursor set as it goes) and returns its rows
// and the requests it took.
func listAll(t *testing.T, c *origin.Client, team string, r origin.ListRequest) (rows []origin.Membership, requests int) {
	t.Helper()
	for {
		requests++
		if requests > 10_000 {
			t.Fatal("endless listing")
		}
		done := false
		err := c.ListMemberships(context.Background(), team, r, func(p *origin.MembershipsPage) error {
			if done {
				t.Fatal("a page after the last one")
			}
			if len(p.Memberships) > r.Limit {
				t.Fatalf("%d rows over the limit %d", len(p.Memberships), r.Limit)
			}
			rows = append(rows, p.Memberships...)
			r.Cursor, done = p.NextCursor, p.NextCursor == ""
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return rows, requests
		}
	}
}

// TestListFormsAgainstTheReference: every form of the listing, through the client, gives the
// listing; a stream takes one request, or one per StreamPages pages when the origin ends its
// answers early, and the partitions between them give each row once.
func TestListFormsAgainstTheReference(t *testing.T) {
	var n atomic.Int64
	srv, err := reference.NewServer(reference.ServerConfig{World: refWorld(t), Listings: reference.ListingsConfig{StreamPages: 4}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(countRequests(srv, &n))
	t.Cleanup(hs.Close)
	c := newTestClient(t, hs.URL, "", nil)
	team := srv.TeamIDs()[1]
	want := srv.Memberships(team)
	const limit = 23
	pages := (len(want) + limit - 1) / limit
	for _, tc := range []struct {
		r        origin.ListRequest
		requests int
	}{
		{origin.ListRequest{Limit: limit}, pages},
		{origin.ListRequest{Limit: limit, Stream: true}, (pages + 3) / 4},
	} {
		got, requests := listAll(t, c, team, tc.r)
		if !slices.Equal(got, want) || requests != tc.requests {
			t.Fatalf("%+v: %d rows in %d requests, want %d in %d", tc.r, len(got), requests, len(want), tc.requests)
		}
	}
	for _, stream := range []bool{false, true} {
		var all []origin.Membership
		for i := range 5 {
			got, _ := listAll(t, c, team, origin.ListRequest{Limit: limit, Stream: stream, Partition: i, Partitions: 5})
			all = append(all, got...)
		}
		if !slices.Equal(all, want) {
			t.Fatalf("5 partitions, stream %v: %d rows, want %d", stream, len(all), len(want))
		}
	}
}

func refWorld(t *testing.T) *reference.World {
	w, err := reference.NewWorld(7, smallWorld)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

const (
	memPage  = `{"memberships":[{"channel":"C1","user":"U%d","updated":1}],"next_cursor":"%s"}` + "\n"
	lastPage = `{"memberships":[],"next_cursor":""}` + "\n"
)

// serveStream answers every request with write, as a stream.
func serveStream(t *testing.T, write func(w http.ResponseWriter, r *http.Request)) *origin.Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", origin.StreamType)
		write(w, r)
	}))
	t.Cleanup(hs.Close)
	return newTestClient(t, hs.URL, "", nil) // Timeout 300ms
}

// TestStreamTimeoutIsPerPage: the call timeout bounds the wait for each page of a stream, not
// the whole stream: pages every 30 ms make a stream far longer than the timeout, and a stream
// that stops sending fails with ErrTimeout, after the pages it did send.
func TestStreamTimeoutIsPerPage(t *testing.T) {
	stall := make(chan struct{})
	c := serveStream(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 20 {
			fmt.Fprintf(w, memPage, i, fmt.Sprint("c", i))
			rc.Flush()
			if r.URL.Query().Get("cursor") == "stall" && i == 1 {
				select {
				case <-stall:
				case <-r.Context().Done():
				}
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
		fmt.Fprint(w, lastPage)
	})
	t.Cleanup(func() { close(stall) }) // before the server's Close, which waits for its handlers
	ctx := context.Background()
	pages := 0
	err := c.ListMemberships(ctx, "T1", origin.ListRequest{Stream: true}, func(*origin.MembershipsPage) error { pages++; return nil })
	if err != nil || pages != 21 {
		t.Fatalf("a stream of 21 pages over 600 ms with a 300 ms timeout: %d pages, %v", pages, err)
	}
	pages = 0
	err = c.ListMemberships(ctx, "T1", origin.ListRequest{Stream: true, Cursor: "stall"}, func(*origin.MembershipsPage) error { pages++; return nil })
	if !errors.Is(err, origin.ErrTimeout) || !origin.IsFailure(err) || pages != 2 {
		t.Fatalf("a stream that stalls after 2 pages: %d pages, %v; want 2 and ErrTimeout", pages, err)
	}
}

// TestStreamAnswers: what the client makes of the streamed answers a working origin sends, and
// of those it never sends.
func TestStreamAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		typ   string
		pages int
		want  string // "" for no error, else a part of ErrBadResponse's message
	}{
		{"the whole listing", fmt.Sprintf(memPage, 1, "a") + lastPage, "", 2, ""},
		{"ended early", fmt.Sprintf(memPage, 1, "a") + fmt.Sprintf(memPage, 2, "b"), "", 2, ""},
		{"answered plain", `{"memberships":[{"channel":"C1","user":"U1","updated":1}],` + "\n" + `"next_cursor":"x"}`, "application/json", 1, ""},
		{"truncated", fmt.Sprintf(memPage, 1, "a") + fmt.Sprintf(memPage, 2, "b")[:30], "", 1, "truncated"},
		{"no page", "", "", 0, "without a page"},
		{"empty line", fmt.Sprintf(memPage, 1, "a") + "\n" + lastPage, "", 1, "empty line"},
		{"after the last page", lastPage + fmt.Sprintf(memPage, 1, "a"), "", 1, "after its last page"},
		{"a bad page", fmt.Sprintf(memPage, 1, "a") + `{"memberships":[{"channel":"C1","user":"","updated":1}],"next_cursor":""}` + "\n", "", 1, "user id"},
		{"a page too long", fmt.Sprintf(memPage, 1, strings.Repeat("x", 5000)), "", 0, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.typ == "" {
					tc.typ = origin.StreamType
				}
				w.Header().Set("Content-Type", tc.typ)
				fmt.Fprint(w, tc.body)
			}))
			defer hs.Close()
			c, err := origin.NewClient(origin.ClientConfig{BaseURL: hs.URL, MaxBodyBytes: 4096})
			if err != nil {
				t.Fatal(err)
			}
			defer origin.CloseIdleConnections(c)
			pages := 0
			err = c.ListMemberships(context.Background(), "T1", origin.ListRequest{Stream: true}, func(*origin.MembershipsPage) error { pages++; return nil })
			if pages != tc.pages {
				t.Fatalf("%d pages handed on, want %d", pages, tc.pages)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var oe *origin.Error
			if !errors.Is(err, origin.ErrBadResponse) || !errors.As(err, &oe) || origin.IsFailure(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want a bad response saying %q", err, tc.want)
			}
		})
	}
}

// TestBrokenStreamIsAFailure: a stream cut by the connection (not ended by the origin) is a
// failure of the origin, after the pages that arrived whole; the page function's own error
// ends the request and comes back as it is.
func TestBrokenStreamIsAFailure(t *testing.T) {
	c := serveStream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, memPage, 1, "a")
		fmt.Fprintf(w, memPage, 2, "b")
		fmt.Fprint(w, `{"memberships":[{"chan`)
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // the connection closes without ending the chunked body
	})
	pages := 0
	err := c.ListMemberships(context.Background(), "T1", origin.ListRequest{Stream: true}, func(*origin.MembershipsPage) error { pages++; return nil })
	if !errors.Is(err, origin.ErrUnavailable) || pages != 2 {
		t.Fatalf("%d pages, %v; want 2 and ErrUnavailable", pages, err)
	}
	mine := errors.New("enough")
	err = c.ListMemberships(context.Background(), "T1", origin.ListRequest{Stream: true}, func(*origin.MembershipsPage) error { return mine })
	if err != mine {
		t.Fatalf("the page function's error came back as %v", err)
	}
}

func TestTeamInfoPartitionsAreBounded(t *testing.T) {
	const team = `{"team":{"id":"T1","name":"A","domain":"a","updated":1},"seq":3`
	for body, ok := range map[string]bool{
		team + `}`: true,
		team + `,"listings":{"stream":true,"partitions":{"users":1,"channels":0,"memberships":64}}}`: true,
		team + `,"listings":{"partitions":{"memberships":65}}}`:                                      false,
		team + `,"listings":{"partitions":{"users":-1}}}`:                                            false,
	} {
		ti, err := origin.DecodeTeamInfo("T1", []byte(body))
		if ok != (err == nil) || (err != nil && !errors.Is(err, origin.ErrBadResponse)) {
			t.Fatalf("%s: %+v, %v", body, ti, err)
		}
	}
}
