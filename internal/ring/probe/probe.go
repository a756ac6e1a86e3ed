// Package probe is the direct health probe of an edge over HTTP: the edge serves Handler on
// Path, a proxy asks it with Client.Probe (its ring.MembershipConfig.Probe) when it cannot
// hear the edge's announcements, NATS being down (internal/ring/silent.go says why and when).
//
// The answer is the announcement the edge would send now, not a bare 200: the watcher learns
// from it what announcements would have told it (draining, over its memory budget, its load,
// a new life), and it cannot be fooled by another process now listening at the edge's
// address, since the answer must name the edge and that address. Not /readyz on purpose: it
// answers 503 over the memory budget, when an edge stays in the ring and only admits nothing
// (leaving it would move its warm teams to edges where they are cold), and says nothing of
// which process answered.
package probe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/weft-edge/weft/internal/ring"
)

// Path is where an edge answers probes.
const Path = "/probe"

// maxAnswer bounds an answer (an announcement is about 250 bytes).
const maxAnswer = 4 << 10

// Header carries a probe's proof that a proxy or a peer edge sent it (Client.Sign), for the
// edge's allow (Handler): an announcement tells the node, its region and its load, which is no
// outsider's business on a client port.
const Header = "Weft-Routed"

// Handler answers GET Path with answer(): the announcement as JSON, or 404 when ok is false
// (an edge in no ring: no watcher should keep it). It is as cheap as an announcement: one
// small struct encoded. allow, when set, judges the request's Header: a probe it refuses gets
// the same 404 as a path that does not exist.
func Handler(answer func() (a ring.Announcement, ok bool), allow func(proof string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow != nil && !allow(r.Header.Get(Header)) {
			http.NotFound(w, r)
			return
		}
		a, ok := answer()
		if !ok {
			http.Error(w, "this edge is in no ring", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(a)
	})
}

// Client probes edges. The zero value is not usable; New makes one.
type Client struct {
	http   *http.Client
	scheme string
	// Sign, when set, proves each probe came from a proxy or a peer (Header).
	Sign func() string
}

// New is a client with a connection pool of its own, kept apart from the proxied traffic's:
// one idle connection per edge, so that a probe every interval costs no new connection.
// Every probe is bounded by its context (the membership's ProbeTimeout). With tc, edges are
// probed over TLS (edges that serve it: their --tls-cert), else over plain HTTP.
func New(tc *tls.Config) *Client {
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	return &Client{scheme: scheme, http: &http.Client{Transport: &http.Transport{
		Proxy:               nil, // edges are reached directly, as the proxied traffic is
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     tc,
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Probe asks the edge that last describes at last.Addr, and returns its answer. Refused,
// timed out, a status other than 200, a malformed answer, or one from another node or
// address: an error.
func (c *Client) Probe(ctx context.Context, last ring.Announcement) (ring.Announcement, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Scheme: c.scheme, Host: last.Addr, Path: Path}).String(), nil)
	if err != nil {
		return ring.Announcement{}, fmt.Errorf("probe %s: %w", last.Node, err)
	}
	if c.Sign != nil {
		req.Header.Set(Header, c.Sign())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return ring.Announcement{}, fmt.Errorf("probe %s: %w", last.Node, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	switch {
	case err != nil:
		return ring.Announcement{}, fmt.Errorf("probe %s at %s: reading the answer: %w", last.Node, last.Addr, err)
	case resp.StatusCode != http.StatusOK:
		return ring.Announcement{}, fmt.Errorf("probe %s at %s: %s", last.Node, last.Addr, resp.Status)
	case len(body) > maxAnswer:
		return ring.Announcement{}, fmt.Errorf("probe %s at %s: answer over %d bytes", last.Node, last.Addr, maxAnswer)
	}
	var a ring.Announcement
	if err := json.Unmarshal(body, &a); err != nil {
		return ring.Announcement{}, fmt.Errorf("probe %s at %s: not an announcement: %w", last.Node, last.Addr, err)
	}
	if err := a.Validate(); err != nil {
		return ring.Announcement{}, fmt.Errorf("probe %s at %s: %w", last.Node, last.Addr, err)
	}
	if a.Node != last.Node || a.Addr != last.Addr {
		return ring.Announcement{}, fmt.Errorf("probe %s at %s: answered by %s (at %s): another process listens there",
			last.Node, last.Addr, a.Node, a.Addr)
	}
	return a, nil
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }
