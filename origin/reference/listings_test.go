package reference

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/weft-edge/weft/origin"
)

// refListPath is a listing request's path and query.
func refListPath(team, listing string, limit int, extra url.Values) string {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for k, v := range extra {
		q[k] = v
	}
	return "/origin/v1/teams/" + team + "/" + listing + "?" + q.Encode()
}

// refStream does one streamed request and returns its pages, checking the media type, the
// limit, and that only the last page may end the listing.
func refStream(t testing.TB, hs *httptest.Server, path string, limit int) []refPage {
	t.Helper()
	resp, err := hs.Client().Get(hs.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != origin.StreamType {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var pages []refPage
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(pages) > 0 && *pages[len(pages)-1].NextCursor == "" {
			t.Fatalf("GET %s: a page after the last", path)
		}
		var p refPage
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil || p.NextCursor == nil {
			t.Fatalf("GET %s: line %d: %v in %.200s", path, len(pages)+1, err, sc.Bytes())
		}
		if n := len(p.Users) + len(p.Channels) + len(p.Memberships); n > limit {
			t.Fatalf("GET %s: %d rows over limit %d", path, n, limit)
		}
		pages = append(pages, p)
	}
	if err := sc.Err(); err != nil || len(pages) == 0 {
		t.Fatalf("GET %s: %v after %d pages", path, err, len(pages))
	}
	return pages
}

// refWalkForm walks one listing (or partition i of n when n > 1) in pages or streams, and
// returns its rows and how many requests it took.
func refWalkForm[T any](t testing.TB, hs *httptest.Server, team, listing string, limit, i, n int, stream bool,
	rows func(*refPage) []T) (all []T, requests int) {
	t.Helper()
	extra := url.Values{}
	if n > 1 {
		extra.Set("partition", strconv.Itoa(i))
		extra.Set("partitions", strconv.Itoa(n))
	}
	if stream {
		extra.Set("stream", "1")
	}
	for {
		requests++
		if requests > 100_000 {
			t.Fatalf("%s of %s: endless", listing, team)
		}
		var pages []refPage
		if stream {
			pages = refStream(t, hs, refListPath(team, listing, limit, extra), limit)
		} else {
			var p refPage
			refGetJSON(t, hs, refListPath(team, listing, limit, extra), &p)
			pages = []refPage{p}
		}
		for _, p := range pages {
			all = append(all, rows(&p)...)
		}
		cursor := *pages[len(pages)-1].NextCursor
		if cursor == "" {
			return all, requests
		}
		extra.Set("cursor", cursor)
	}
}

// TestListingFormsListWhatPagesList: a stream is the pages back to back, and the partitions of
// a listing, walked in order, are the listing: disjoint, covering, in the same order. The team
// has changed first, so the overlay is listed too.
func TestListingFormsListWhatPagesList(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team := s.TeamIDs()[1]
	ctx := t.Context()
	refMust(t)(s.CreateChannel(ctx, team, "proj-forms", userID(1, 5), false))
	refMust(t)(s.DeleteChannel(ctx, team, channelID(1, 3)))
	of := s.ChannelsOf(team, userID(1, 0))
	refMust(t)(s.LeaveChannel(ctx, team, of[len(of)-1], userID(1, 0)))
	refMust(t)(s.UpdateUser(ctx, team, userID(1, 7), func(u *origin.User) { u.Title = "Partitioned" }))
	users := func(p *refPage) []origin.User { return p.Users }
	chans := func(p *refPage) []origin.Channel { return p.Channels }
	mems := func(p *refPage) []origin.Membership { return p.Memberships }
	const limit = 17
	wantU, wantC, wantM := s.Users(team), s.Channels(team), s.Memberships(team)
	for _, stream := range []bool{false, true} {
		for _, n := range []int{1, 2, 3, 7, 400} { // 400 partitions: more than users or channels
			var gotU []origin.User
			var gotC []origin.Channel
			var gotM []origin.Membership
			streamed := 0
			for i := range n {
				u, ru := refWalkForm(t, hs, team, "users", limit, i, n, stream, users)
				c, rc := refWalkForm(t, hs, team, "channels", limit, i, n, stream, chans)
				m, rm := refWalkForm(t, hs, team, "memberships", limit, i, n, stream, mems)
				gotU, gotC, gotM = append(gotU, u...), append(gotC, c...), append(gotM, m...)
				streamed += ru + rc + rm
			}
			what := fmt.Sprintf("stream %v, %d partitions", stream, n)
			if !slices.Equal(gotU, wantU) || !slices.Equal(gotC, wantC) || !slices.Equal(gotM, wantM) {
				t.Fatalf("%s: %d/%d/%d rows, want %d/%d/%d", what, len(gotU), len(gotC), len(gotM), len(wantU), len(wantC), len(wantM))
			}
			if stream && streamed != 3*n {
				t.Fatalf("%s: %d requests, want one per partition and listing (%d)", what, streamed, 3*n)
			}
		}
	}
}

// TestChannelCreatedDuringAPartitionedWalk: partitions asked for before and after a channel is
// created neither overlap nor leave a gap (their bounds do not follow the channel count), and
// the new channel is in the last one, even when that one's walk began before it existed.
func TestChannelCreatedDuringAPartitionedWalk(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team := s.TeamIDs()[0]
	first := func(i int) refPage {
		var p refPage
		refGetJSON(t, hs, refListPath(team, "channels", 2, url.Values{"partition": {strconv.Itoa(i)}, "partitions": {"3"}}), &p)
		return p
	}
	p0, p2 := first(0), first(2)
	created := refMust(t)(s.CreateChannel(t.Context(), team, "made-mid-walk", userID(0, 1), false)).Channel
	var got []origin.Channel
	for _, p := range []refPage{p0, first(1), p2} {
		got = append(got, p.Channels...)
		for cursor := *p.NextCursor; cursor != ""; {
			var next refPage
			refGetJSON(t, hs, refListPath(team, "channels", 2, url.Values{"cursor": {cursor}}), &next)
			got, cursor = append(got, next.Channels...), *next.NextCursor
		}
	}
	if !slices.Equal(got, s.Channels(team)) || got[len(got)-1].ID != created.ID {
		t.Fatalf("partitions listed %d channels ending with %s; want %d ending with the new %s",
			len(got), got[len(got)-1].ID, len(s.Channels(team)), created.ID)
	}
}

func TestStreamEndsAfterStreamPages(t *testing.T) {
	s, hs := refServe(t, ServerConfig{Listings: ListingsConfig{StreamPages: 2}})
	team := s.TeamIDs()[0]
	pages := refStream(t, hs, refListPath(team, "users", 10, url.Values{"stream": {"1"}}), 10)
	if len(pages) != 2 || *pages[1].NextCursor == "" {
		t.Fatalf("%d pages, last cursor %q: want 2 pages and a cursor to go on from", len(pages), *pages[len(pages)-1].NextCursor)
	}
	got, requests := refWalkForm(t, hs, team, "users", 10, 0, 1, true, func(p *refPage) []origin.User { return p.Users })
	if !slices.Equal(got, s.Users(team)) || requests != (refSize.Users+19)/20 {
		t.Fatalf("%d users in %d requests, want %d in %d", len(got), requests, refSize.Users, (refSize.Users+19)/20)
	}
}

func TestListingParamsAreChecked(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	team := s.TeamIDs()[0]
	for _, q := range []string{"partitions=0&partition=0", "partitions=2&partition=2", "partitions=2&partition=-1",
		"partitions=x&partition=0", "partitions=2", "partition=0", "partitions=1025&partition=0"} {
		refWantError(t, hs, "", "/origin/v1/teams/"+team+"/users?"+q, http.StatusBadRequest, "invalid_partition")
	}
	refWantError(t, hs, "", "/origin/v1/teams/"+team+"/users?stream=yes", http.StatusBadRequest, "invalid_request")
	for _, c := range []string{encodeCursor(cursorUsers, 1, 2, 3), encodeCursor(cursorChannels, 4, 5), encodeCursor(cursorMemberships, 1)} {
		refWantError(t, hs, "", "/origin/v1/teams/"+team+"/users?cursor="+c, http.StatusBadRequest, "invalid_cursor")
	}
	// partitions=1 is the whole listing.
	var p refPage
	refGetJSON(t, hs, refListPath(team, "users", 1000, url.Values{"partition": {"0"}, "partitions": {"1"}}), &p)
	if len(p.Users) != refSize.Users {
		t.Fatalf("partitions=1: %d users", len(p.Users))
	}
}

func TestTeamAnnouncesListings(t *testing.T) {
	// refSize: 150 users, 25 channels, ~750 memberships.
	for _, c := range []struct {
		cfg  ListingsConfig
		want string // the listings field, "" for none
	}{
		{ListingsConfig{}, `{"stream":true,"partitions":{"users":1,"channels":1,"memberships":1}}`},
		{ListingsConfig{PartitionRows: 100}, `{"stream":true,"partitions":{"users":2,"channels":1,"memberships":8}}`},
		{ListingsConfig{PartitionRows: 100, MaxPartitions: 3, NoStream: true}, `{"stream":false,"partitions":{"users":2,"channels":1,"memberships":3}}`},
		{ListingsConfig{Plain: true}, ""},
	} {
		s, hs := refServe(t, ServerConfig{Listings: c.cfg})
		var m map[string]json.RawMessage
		refGetJSON(t, hs, "/origin/v1/teams/"+s.TeamIDs()[0], &m)
		if got := string(m["listings"]); got != c.want {
			t.Fatalf("%+v: listings %s, want %s", c.cfg, got, c.want)
		}
		_, body := refGet(t, hs, "", "/origin/v1/teams/"+s.TeamIDs()[0])
		if _, err := origin.DecodeTeamInfo(s.TeamIDs()[0], body); err != nil {
			t.Fatalf("%+v: the client refuses the team answer: %v", c.cfg, err)
		}
	}
	for _, bad := range []ListingsConfig{{MaxPartitions: origin.MaxPartitions + 1}, {MaxPartitions: -1}, {PartitionRows: -1}, {StreamPages: -1}} {
		if _, err := NewServer(ServerConfig{World: refWorld(t, 1, refSize), Listings: bad}); err == nil {
			t.Fatalf("NewServer accepted %+v", bad)
		}
	}
}
