package reference

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/weft-edge/weft/origin"
)

// Benchmarks of the reference origin at the giant size (366,000 users, 36,000 channels, ~5M
// memberships):
//
//	go test -run '^$' -bench . -benchmem ./origin/reference/

var refGiant struct {
	once sync.Once
	w    *World
}

func refGiantWorld(b *testing.B) *World {
	refGiant.once.Do(func() {
		size, _ := SizeByName("giant")
		w, err := NewWorld(1, size)
		if err != nil {
			b.Fatal(err)
		}
		refGiant.w = w
	})
	return refGiant.w
}

func BenchmarkNewWorldGiant(b *testing.B) {
	size, _ := SizeByName("giant")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var w *World
	for b.Loop() {
		var err error
		if w, err = NewWorld(1, size); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "retained-MiB")
	b.ReportMetric(float64(w.MembershipCount(w.TeamIDs()[0])), "memberships")
}

// refDiscard is a ResponseWriter that counts and drops the body.
type refDiscard struct {
	h http.Header
	n int
}

func (d *refDiscard) Header() http.Header         { return d.h }
func (d *refDiscard) WriteHeader(int)             {}
func (d *refDiscard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// refBenchPage serves one 10,000-row page from the middle of the giant team through the
// handler (no network).
func refBenchPage(b *testing.B, listing, cursor string) {
	s, err := NewServer(ServerConfig{World: refGiantWorld(b)})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/origin/v1/teams/T00000000/"+listing+"?limit=10000&cursor="+url.QueryEscape(cursor), nil)
	d := &refDiscard{h: http.Header{}}
	s.ServeHTTP(d, req)
	if d.n < 100_000 {
		b.Fatalf("page of %d bytes", d.n)
	}
	b.SetBytes(int64(d.n))
	b.ReportAllocs()
	for b.Loop() {
		s.ServeHTTP(d, req)
	}
}

func BenchmarkUsersPage10kGiant(b *testing.B) {
	refBenchPage(b, "users", encodeCursor(cursorUsers, 183_000))
}

func BenchmarkMembershipsPage10kGiant(b *testing.B) {
	refBenchPage(b, "memberships", encodeCursor(cursorMemberships, 183_000, 0))
}

// The same pages through encoding/json, to show what writing JSON by hand buys.
func BenchmarkUsersPage10kGiantReflect(b *testing.B) {
	s, _ := NewServer(ServerConfig{World: refGiantWorld(b)})
	st := s.teams[0]
	b.ReportAllocs()
	for b.Loop() {
		page := origin.UsersPage{Users: make([]origin.User, 0, 10_000), NextCursor: encodeCursor(cursorUsers, 193_000)}
		st.mu.RLock()
		for u := 183_000; u < 193_000; u++ {
			page.Users = append(page.Users, st.user(u))
		}
		st.mu.RUnlock()
		body, _ := json.Marshal(&page)
		b.SetBytes(int64(len(body)))
	}
}

func BenchmarkMembershipsPage10kGiantReflect(b *testing.B) {
	s, _ := NewServer(ServerConfig{World: refGiantWorld(b)})
	st := s.teams[0]
	g := st.w.getGen()
	b.ReportAllocs()
	for b.Loop() {
		page := origin.MembershipsPage{Memberships: make([]origin.Membership, 0, 10_000)}
		st.mu.RLock()
		for u := 183_000; len(page.Memberships) < 10_000; u++ {
			g.rows = st.userChannels(g, u, g.rows)
			uid := userID(0, u)
			for _, row := range g.rows {
				page.Memberships = append(page.Memberships, origin.Membership{Channel: channelID(0, int(row.ch)), User: uid, Updated: row.updated})
			}
		}
		st.mu.RUnlock()
		body, _ := json.Marshal(&page)
		b.SetBytes(int64(len(body)))
	}
}

// BenchmarkGiantAllPages pages through the whole giant team over loopback HTTP, 10,000 rows
// a page, reading every body (not decoding it): the origin's side of a cold load.
func BenchmarkGiantAllPages(b *testing.B) {
	s, err := NewServer(ServerConfig{World: refGiantWorld(b)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	var total int64
	for b.Loop() {
		total = 0
		for _, listing := range []string{"users", "channels", "memberships"} {
			cursor := ""
			for {
				resp, err := hs.Client().Get(hs.URL + "/origin/v1/teams/T00000000/" + listing + "?limit=10000&cursor=" + url.QueryEscape(cursor))
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d %v", listing, resp.StatusCode, err)
				}
				total += int64(len(body))
				// The cursor is the last field: read it without decoding the page.
				tail := body[max(0, len(body)-80):]
				i := lastIndex(tail, `"next_cursor":`)
				if cursor, err = strconv.Unquote(string(tail[i+len(`"next_cursor":`) : len(tail)-1])); err != nil {
					b.Fatal(err)
				}
				if cursor == "" {
					break
				}
			}
		}
	}
	b.ReportMetric(float64(total)/(1<<20), "MiB/op")
}

func lastIndex(b []byte, s string) int {
	for i := len(b) - len(s); i >= 0; i-- {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// BenchmarkGiantSnapshot downloads the one-body eager snapshot of the giant team.
func BenchmarkGiantSnapshot(b *testing.B) {
	s, err := NewServer(ServerConfig{World: refGiantWorld(b)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	var n int64
	for b.Loop() {
		resp, err := hs.Client().Get(hs.URL + "/origin/v1/teams/T00000000/snapshot")
		if err != nil {
			b.Fatal(err)
		}
		n, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/(1<<20), "MiB/op")
}
