package cache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
)

// corrupt serves the real origin's answer for every request, rewritten by fix for requests
// whose path ends with suffix. The origin itself stays real; only its bytes go bad.
func corrupt(suffix string, fix func(body []byte) []byte) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		// Cursors this wrapper made up stand for the first page again.
		if c := r.URL.Query().Get("cursor"); strings.HasPrefix(c, "again-") || c == "same" {
			q := r.URL.Query()
			q.Del("cursor")
			r.URL.RawQuery = q.Encode()
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if strings.HasSuffix(r.URL.Path, suffix) && rec.Code == http.StatusOK {
			body = fix(body)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}
}

// editRows decodes a page, lets edit change its rows as generic maps, and re-encodes it.
func editRows(key string, edit func(rows []map[string]any) []map[string]any) func([]byte) []byte {
	return func(body []byte) []byte {
		var page map[string]json.RawMessage
		if err := json.Unmarshal(body, &page); err != nil {
			panic(err)
		}
		var rows []map[string]any
		if err := json.Unmarshal(page[key], &rows); err != nil {
			panic(err)
		}
		page[key], _ = json.Marshal(edit(rows))
		out, _ := json.Marshal(page)
		return out
	}
}

func TestBadOriginInputIsRefusedAndChangesNothing(t *testing.T) {
	s := newStack(t, stackOpts{pageLimit: 50, cache: func(c *cache.Config) { c.MaxMemberships = 5000 }})
	ctx := context.Background()
	ids := s.origin.TeamIDs()
	warm, err := s.teams.Acquire(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Release()
	before := snapshotOf(t, warm.Store())
	victim := ids[1]

	var n atomic.Int64
	cases := []struct {
		name string
		wrap func(http.ResponseWriter, *http.Request, http.Handler)
	}{
		{"malformed JSON", corrupt("/users", func(b []byte) []byte { return b[:len(b)/2] })},
		{"object of another team", corrupt("/users", editRows("users", func(rows []map[string]any) []map[string]any {
			rows[len(rows)-1]["team"] = "TOTHERTEAM"
			return rows
		}))},
		{"negative version", corrupt("/channels", editRows("channels", func(rows []map[string]any) []map[string]any {
			rows[0]["updated"] = -4
			return rows
		}))},
		{"missing version", corrupt("/memberships", editRows("memberships", func(rows []map[string]any) []map[string]any {
			delete(rows[0], "updated")
			return rows
		}))},
		{"more rows than asked", corrupt("/users", editRows("users", func(rows []map[string]any) []map[string]any {
			for len(rows) <= 50 {
				rows = append(rows, rows...)
			}
			return rows
		}))},
		{"listing that never ends", corrupt("/memberships", func(b []byte) []byte {
			var p origin.MembershipsPage
			json.Unmarshal(b, &p)
			p.NextCursor = fmt.Sprintf("again-%d", n.Add(1)) // always one more page
			out, _ := json.Marshal(p)
			return out
		})},
		{"repeating cursor", corrupt("/channels", editRows("channels", func(rows []map[string]any) []map[string]any {
			return rows
		}))},
		{"not JSON at all", corrupt(victim, func([]byte) []byte { return []byte("<html>oops</html>") })},
	}
	// The repeating-cursor case needs the cursor rewritten too: do it with its own wrapper.
	cases[6].wrap = corrupt("/channels", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"next_cursor":""`), []byte(`"next_cursor":"same"`), 1)
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The first contract's pages, one per request; listings_test.go has the newer forms.
			s.setWrap(chain(c.wrap, firstContract))
			defer s.setWrap(nil)
			_, err := s.teams.Acquire(ctx, victim)
			if !errors.Is(err, origin.ErrBadResponse) {
				t.Fatalf("load: %v, want ErrBadResponse", err)
			}
			if s.teams.Lookup(victim) != nil {
				t.Fatal("a refused load left a team behind")
			}
			if after := snapshotOf(t, warm.Store()); after != before {
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

// snapshotOf renders everything a store answers as one string, to compare before and after.
func snapshotOf(t *testing.T, st *cache.Store) string {
	t.Helper()
	users, _, err := st.UsersPage("", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, u := range users {
		chans, _, _ := st.UserChannels(u.ID, "", "", 1<<20)
		fmt.Fprintf(&b, "%+v %v\n", u, chans)
	}
	fmt.Fprintf(&b, "%+v %d", st.Info(), st.Seq())
	return b.String()
}
