package postgres

import (
	"net/http"
	"net/url"
	"testing"
)

// FuzzListRequest: whatever an edge (or anyone holding the service token) sends as a listing's
// query, parseList refuses it with a code or reads a request the queries can run: a key of
// the listing's width, a partition's buckets within range and not empty, a limit in bounds.
func FuzzListRequest(f *testing.F) {
	for _, q := range []string{"", "limit=5", "stream=1&partition=3&partitions=8", "cursor=VTAwMDAwMDAx",
		"cursor=" + encodeCursor([]string{"7", "U1", "128"}), "cursor=" + encodeCursor([]string{"C1", "U1"}),
		"partition=0&partitions=64&limit=10000", "cursor=" + encodeCursor([]string{"1023", "U", "C", "1024"})} {
		f.Add(q, 1)
		f.Add(q, 2)
	}
	f.Fuzz(func(t *testing.T, query string, keys int) {
		keys = 1 + (keys & 1) // users and channels 1, memberships 2
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/origin/v1/teams/T/users", RawQuery: query}}
		r.SetPathValue("team", "T")
		req, bad := parseList(r, keys)
		if bad != "" {
			return
		}
		if len(req.key) != keys || req.limit < 1 || req.limit > MaxLimit {
			t.Fatalf("%q: key %q, limit %d", query, req.key, req.limit)
		}
		if req.part && (req.bucket < 0 || req.bucket >= req.end || req.end > buckets) {
			t.Fatalf("%q: partition from bucket %d to %d", query, req.bucket, req.end)
		}
	})
}
