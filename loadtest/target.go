package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/weft-edge/weft/internal/token"
)

// Target is a running weft stack the scenarios drive: one started for the run (Spawn) or one
// already running (its URLs given). Scenarios reach it only through its public endpoints
// (docs/protocol.md) and the reference origin's listings and admin endpoints.
type Target struct {
	// URL is where clients connect: an edge or a proxy, http://host:port.
	URL string
	// MetricsURL is an edge's operator listener (its --ops-addr), for /metrics (the fanout
	// scenario reads how many events it took from NATS). Default: URL, where /metrics is not
	// served: scenarios that read metrics then say so.
	MetricsURL string
	// OriginURL and OriginToken reach the reference origin: the scenarios read the world from
	// its listings, post events and set its latency through its admin endpoints.
	OriginURL, OriginToken string
	// HTTP makes every request and handshake.
	HTTP *http.Client

	keys  *token.Keys
	stack *Stack // when spawned
}

// NewTarget is a target already running; secret is the token secret its edges verify.
func NewTarget(clientURL, metricsURL, originURL, originToken, secret string) (*Target, error) {
	for name, u := range map[string]string{"target": clientURL, "origin": originURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("loadtest: %s URL %q: want http://host:port", name, u)
		}
	}
	keys, err := token.New([]byte(secret))
	if err != nil {
		return nil, fmt.Errorf("loadtest: token secret: %w", err)
	}
	if metricsURL == "" {
		metricsURL = clientURL
	}
	return &Target{URL: strings.TrimSuffix(clientURL, "/"), MetricsURL: strings.TrimSuffix(metricsURL, "/"),
		OriginURL: strings.TrimSuffix(originURL, "/"), OriginToken: originToken,
		HTTP: &http.Client{Transport: newTransport()}, keys: keys}, nil
}

// Spawn starts `weft dev` with args (e.g. --size 32k) as a child process and targets it.
// Close stops it.
func Spawn(ctx context.Context, bin string, stderr io.Writer, args ...string) (*Target, error) {
	s, err := StartDev(ctx, DevConfig{Bin: bin, Args: args, Stderr: stderr, StartTimeout: 3 * time.Minute})
	if err != nil {
		return nil, err
	}
	t, err := NewTarget(s.EdgeURL, s.OpsURL, s.OriginURL, "", token.DevSecret)
	if err != nil {
		s.Close()
		return nil, err
	}
	t.HTTP, t.stack = s.HTTP, s
	return t, nil
}

// Stack is the spawned child, nil for a target given by URL.
func (t *Target) Stack() *Stack { return t.stack }

// Close stops a spawned stack.
func (t *Target) Close() error {
	if t.stack != nil {
		return t.stack.Close()
	}
	t.HTTP.CloseIdleConnections()
	return nil
}

// WSURL is the client WebSocket endpoint.
func (t *Target) WSURL() string { return "ws" + strings.TrimPrefix(t.URL, "http") + "/ws" }

// Token issues a client token for user of team.
func (t *Target) Token(team, user string) (string, error) {
	return t.keys.Issue(team, user, 2*time.Hour)
}

// team is name, or when it is empty the first team a spawned stack printed tokens for. The
// origin contract has no listing of teams, so against a target given by URL the caller names
// the team.
func (t *Target) team(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if t.stack != nil && len(t.stack.Tokens) > 0 {
		return t.stack.Tokens[0].Team, nil
	}
	return "", errors.New("loadtest: name the team (--team): a target given by URL does not say which teams it has")
}

// SetOriginLatency makes the reference origin answer every contract request after d (its
// admin faults endpoint): the main region, far from the edge. The origin's other faults are
// kept, and restore sets every fault back to what it was.
func (t *Target) SetOriginLatency(ctx context.Context, d time.Duration) (restore func() error, err error) {
	u := t.OriginURL + "/origin/admin/faults"
	var was map[string]any
	if err := originJSON(ctx, t.HTTP, http.MethodGet, u, t.OriginToken, nil, &was); err != nil {
		return nil, err
	}
	set := func(f map[string]any) error {
		body, err := json.Marshal(f)
		if err != nil {
			return err
		}
		var out map[string]any
		return originJSON(context.WithoutCancel(ctx), t.HTTP, http.MethodPost, u, t.OriginToken, body, &out)
	}
	now := maps.Clone(was)
	now["latency"] = d.String()
	if err := set(now); err != nil {
		return nil, err
	}
	return func() error { return set(was) }, nil
}

// Metrics reads the named series from the edge's /metrics.
func (t *Target) Metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	return readMetrics(ctx, t.HTTP, t.MetricsURL, names)
}

// Progress prints a status line every interval until stop is called: a long scenario shows
// it is alive and how far it got. line is called from Progress's own goroutine.
func Progress(w io.Writer, every time.Duration, line func() string) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(w, "  %5.1fs  %s\n", time.Since(start).Seconds(), line())
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
