package cache_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
)

// Helpers for the tests of the listings' forms (docs/origin.md, "Fewer round trips"): origin
// wrappers (backend.Origin.SetWrap) that change what the real reference origin announces, and
// a rendering of a whole store to compare loads.

type wrapFunc = func(w http.ResponseWriter, r *http.Request, next http.Handler)

// chain puts outer in front of inner: outer sees what inner made of the origin's answer.
func chain(outer, inner wrapFunc) wrapFunc {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		outer(w, r, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner(w, r, next) }))
	}
}

// isTeamPath reports whether r asks for the team endpoint itself.
func isTeamPath(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/origin/v1/teams/")
	return ok && !strings.Contains(rest, "/")
}

// announce rewrites the team answer's announcement of the listings' forms: nil removes it (an
// origin of the first contract), anything else replaces it.
func announce(l *origin.Listings) wrapFunc {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !isTeamPath(r) {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var m map[string]json.RawMessage
		if rec.Code == http.StatusOK && json.Unmarshal(body, &m) == nil {
			delete(m, "listings")
			if l != nil {
				m["listings"], _ = json.Marshal(l)
			}
			body, _ = json.Marshal(m)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}
}

// firstContract is an origin of the first contract: it announces no newer form.
var firstContract = announce(nil)

// render writes everything a store answers, ordered by ID (the dense indexes depend on the
// order rows arrived in, which differs between forms), to compare two loads of a team.
func render(t testing.TB, st *cache.Store) string {
	t.Helper()
	var users, chans []string
	seq := st.EachObject(func(u cache.UserObject) { users = append(users, u.User.ID) },
		func(c cache.ChannelObject) { chans = append(chans, c.Channel.ID) })
	slices.Sort(users)
	slices.Sort(chans)
	var b strings.Builder
	nu, nc := st.Counts()
	fmt.Fprintf(&b, "%+v seq %d, %d users, %d channels\n", st.Info(), seq, nu, nc)
	for _, id := range users {
		u, _ := st.User(id)
		of, next, err := st.UserChannels(id, "", "", 1<<20)
		if err != nil || next != "" {
			t.Fatalf("channels of %s: %v", id, err)
		}
		slices.Sort(of)
		fmt.Fprintf(&b, "%+v %v\n", u, of)
	}
	for _, id := range chans {
		c, ok := st.Channel(id, "")
		members := st.Members(id)
		slices.Sort(members)
		fmt.Fprintf(&b, "%v %+v %v\n", ok, c, members)
	}
	return b.String()
}
