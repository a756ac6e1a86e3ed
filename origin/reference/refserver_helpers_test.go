package reference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/weft-edge/weft/origin"
)

// Helpers of the reference origin's tests. Their names start with "ref" because they were
// written when the client's tests shared the package (before origin/reference was split off).

// refSize is a small custom world: big enough for paging over several teams, small enough for
// -race.
var refSize = Size{Name: "reftest", Teams: 2, Users: 150, Channels: 25, ChannelsPerUser: 5}

func refWorld(t testing.TB, seed int64, size Size) *World {
	t.Helper()
	w, err := NewWorld(seed, size)
	if err != nil {
		t.Fatalf("NewWorld(%d, %v): %v", seed, size, err)
	}
	return w
}

// refServe starts cfg's server (with a world of refSize when cfg.World is nil) over loopback.
func refServe(t testing.TB, cfg ServerConfig) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.World == nil {
		cfg.World = refWorld(t, 7, refSize)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}

// refGet does a GET with the token (when not "") and returns the status and body.
func refGet(t testing.TB, hs *httptest.Server, token, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, hs.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading: %v", path, err)
	}
	return resp.StatusCode, body
}

// refGetJSON GETs path without a token, expects 200 and decodes the body into v.
func refGetJSON(t testing.TB, hs *httptest.Server, path string, v any) {
	t.Helper()
	status, body := refGet(t, hs, "", path)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %.200s", path, err, body)
	}
}

// refWantError expects status and {"error": code}.
func refWantError(t testing.TB, hs *httptest.Server, token, path string, status int, code string) {
	t.Helper()
	got, body := refGet(t, hs, token, path)
	var e struct{ Error string }
	_ = json.Unmarshal(body, &e)
	if got != status || e.Error != code {
		t.Fatalf("GET %s: got %d %s, want %d {\"error\":%q}", path, got, body, status, code)
	}
}

// refPage is any listing page.
type refPage struct {
	Users       []origin.User       `json:"users"`
	Channels    []origin.Channel    `json:"channels"`
	Memberships []origin.Membership `json:"memberships"`
	NextCursor  *string             `json:"next_cursor"`
}

// refWalk pages through one listing with limit and returns every row, checking that no page
// is over the limit and that every page has a next_cursor field.
func refWalk[T any](t testing.TB, hs *httptest.Server, team, listing string, limit int, rows func(*refPage) []T) []T {
	t.Helper()
	var all []T
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1_000_000 {
			t.Fatalf("%s of %s: endless listing", listing, team)
		}
		path := "/origin/v1/teams/" + team + "/" + listing + "?limit=" + strconv.Itoa(limit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page refPage
		refGetJSON(t, hs, path, &page)
		if page.NextCursor == nil {
			t.Fatalf("%s: no next_cursor field", path)
		}
		got := rows(&page)
		if len(got) > limit {
			t.Fatalf("%s: %d rows over limit %d", path, len(got), limit)
		}
		all = append(all, got...)
		if cursor = *page.NextCursor; cursor == "" {
			return all
		}
	}
}

func refWalkUsers(t testing.TB, hs *httptest.Server, team string, limit int) []origin.User {
	return refWalk(t, hs, team, "users", limit, func(p *refPage) []origin.User { return p.Users })
}

func refWalkChannels(t testing.TB, hs *httptest.Server, team string, limit int) []origin.Channel {
	return refWalk(t, hs, team, "channels", limit, func(p *refPage) []origin.Channel { return p.Channels })
}

func refWalkMemberships(t testing.TB, hs *httptest.Server, team string, limit int) []origin.Membership {
	return refWalk(t, hs, team, "memberships", limit, func(p *refPage) []origin.Membership { return p.Memberships })
}

// refPublisher records published events and fails while failing is set.
type refPublisher struct {
	mu      sync.Mutex
	events  []*origin.Event
	failing bool
}

var errRefPublish = errors.New("ref publisher: bus down")

func (p *refPublisher) PublishEvent(_ context.Context, ev *origin.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return errRefPublish
	}
	p.events = append(p.events, ev)
	return nil
}

func (p *refPublisher) setFailing(f bool) {
	p.mu.Lock()
	p.failing = f
	p.mu.Unlock()
}

// seqs returns the seqs published for team, in publish order.
func (p *refPublisher) seqs(team string) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s []int64
	for _, ev := range p.events {
		if ev.Team == team {
			s = append(s, ev.Seq)
		}
	}
	return s
}

func (p *refPublisher) all() []*origin.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// refSnapshotBytes is the whole current state of a team as the snapshot endpoint writes it.
func refSnapshotBytes(t testing.TB, hs *httptest.Server, team string) []byte {
	t.Helper()
	status, body := refGet(t, hs, "", "/origin/v1/teams/"+team+"/snapshot")
	if status != http.StatusOK {
		t.Fatalf("snapshot of %s: %d %s", team, status, body)
	}
	return body
}
