package loadtest

import (
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/client"
)

// The boot scenario: users of one team start their client, the way they did before the edge
// (the eager baseline: the whole team snapshot from the origin, parsed) and with it (lazy: a
// WebSocket to the edge, hello, and the boot method's own channels and nothing else). It
// measures time to ready and the bytes each client downloaded.

// BootConfig configures RunBoot. Zero values are the defaults given.
type BootConfig struct {
	Team string
	// Users boot lazily, each a different active user; default 200. Eager users boot from
	// the snapshot; default min(Users, 20) (a snapshot of a big team is hundreds of MB).
	Users, Eager int
	// Parallel clients boot at once in each arm; default 1: an eager client parses the
	// snapshot on its own device, and here the clients share two cores with the servers.
	Parallel int
	Seed     uint64
	// Progress, when set, gets a status line every 2 s.
	Progress io.Writer
}

// BootArm is one way of booting, measured.
type BootArm struct {
	Clients int `json:"clients"`
	// ColdMS is the first client's time to ready, alone: for lazy boot it includes the edge
	// loading the team from the origin (the first user of a team on an edge pays for it).
	ColdMS float64 `json:"cold_ms"`
	// Ready is the time to ready of the other clients, Parallel at a time: from the start of
	// the connection to a client that can render its channel list.
	Ready Dist `json:"ready"`
	// BytesPerClient is what one client read off the network (HTTP headers included), mean.
	BytesPerClient float64 `json:"bytes_per_client"`
}

// BootFigures is what RunBoot measured.
type BootFigures struct {
	Team         string  `json:"team"`
	TeamUsers    int     `json:"team_users"`
	TeamChannels int     `json:"team_channels"`
	Lazy         BootArm `json:"lazy"`
	Eager        BootArm `json:"eager"`
	BytesRatio   float64 `json:"bytes_ratio"` // eager bytes / lazy bytes
	// EagerGzipBytes is the snapshot gzipped (default level): what the eager client would have
	// downloaded from an origin that compressed it (Slack's did). Lazy bytes are as sent:
	// the edge does not compress WebSocket frames.
	EagerGzipBytes float64 `json:"eager_gzip_bytes"`
	GzipRatio      float64 `json:"gzip_bytes_ratio"` // eager gzipped / lazy
	ReadyP50Ratio  float64 `json:"ready_p50_ratio"`  // eager p50 / lazy p50
}

func (c *BootConfig) defaults(t *Target) error {
	team, err := t.team(c.Team)
	if err != nil {
		return err
	}
	c.Team = team
	c.Users = cmp.Or(c.Users, 200)
	c.Eager = cmp.Or(c.Eager, min(c.Users, 20))
	c.Parallel = cmp.Or(c.Parallel, 1)
	if c.Users < 1 || c.Eager < 1 || c.Parallel < 1 {
		return errors.New("loadtest: boot wants at least one user, one eager user and one at a time")
	}
	return nil
}

// RunBoot runs the boot scenario against t.
func RunBoot(ctx context.Context, t *Target, cfg BootConfig) (*BootFigures, error) {
	if err := cfg.defaults(t); err != nil {
		return nil, err
	}
	users, err := TeamUsers(ctx, t.HTTP, t.OriginURL, t.OriginToken, cfg.Team)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, u := range users {
		if !u.Deleted {
			ids = append(ids, u.ID)
		}
	}
	if len(ids) < cfg.Users {
		return nil, fmt.Errorf("loadtest: team %s has %d active users, not %d", cfg.Team, len(ids), cfg.Users)
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0xb007))
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:cfg.Users]

	f := &BootFigures{Team: cfg.Team}
	var done atomic.Int64
	stop := Progress(cfg.Progress, 2*time.Second, func() string {
		return fmt.Sprintf("boot: %d of %d clients ready", done.Load(), cfg.Users+cfg.Eager)
	})
	defer stop()

	lazy := func(ctx context.Context, i int) (time.Duration, int64, error) {
		tok, err := t.Token(cfg.Team, ids[i])
		if err != nil {
			return 0, 0, err
		}
		hc, read := countingClient()
		start := time.Now()
		c, err := client.Dial(ctx, client.Options{URL: t.WSURL(), Token: tok, HTTPClient: hc, DialTimeout: time.Minute})
		if err != nil {
			return 0, 0, fmt.Errorf("lazy boot of %s: %w", ids[i], err)
		}
		took := time.Since(start)
		if i == 0 {
			team := c.Store().Team()
			f.TeamUsers, f.TeamChannels = team.UserCount, team.ChannelCount
		}
		c.Close()
		hc.CloseIdleConnections()
		return took, read.Load(), nil
	}
	eager := func(ctx context.Context, _ int) (time.Duration, int64, error) {
		hc, read := countingClient()
		defer hc.CloseIdleConnections()
		start := time.Now()
		if err := eagerBoot(ctx, hc, t.OriginURL, t.OriginToken, cfg.Team); err != nil {
			return 0, 0, err
		}
		return time.Since(start), read.Load(), nil
	}
	if f.Lazy, err = bootArm(ctx, cfg.Users, cfg.Parallel, lazy, &done); err != nil {
		return nil, err
	}
	if f.Eager, err = bootArm(ctx, cfg.Eager, cfg.Parallel, eager, &done); err != nil {
		return nil, err
	}
	if f.EagerGzipBytes, err = snapshotGzipped(ctx, t, cfg.Team); err != nil {
		return nil, err
	}
	if f.Lazy.BytesPerClient > 0 {
		f.BytesRatio = f.Eager.BytesPerClient / f.Lazy.BytesPerClient
		f.GzipRatio = f.EagerGzipBytes / f.Lazy.BytesPerClient
	}
	if f.Lazy.Ready.P50 > 0 {
		f.ReadyP50Ratio = f.Eager.Ready.P50 / f.Lazy.Ready.P50
	}
	return f, nil
}

// bootArm boots n clients with one: the first alone (cold), then the rest parallel at a time.
// With n = 1 the cold client is also the distribution.
func bootArm(ctx context.Context, n, parallel int, one func(context.Context, int) (time.Duration, int64, error),
	done *atomic.Int64) (BootArm, error) {
	arm := BootArm{Clients: n}
	h := NewHist()
	var bytes atomic.Int64
	cold, b, err := one(ctx, 0)
	if err != nil {
		return arm, err
	}
	done.Add(1)
	arm.ColdMS = float64(cold.Microseconds()) / 1000
	bytes.Add(b)
	if n == 1 {
		h.Record(cold)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := 1; i < n; i++ {
		g.Go(func() error {
			took, b, err := one(gctx, i)
			if err != nil {
				return err
			}
			h.Record(took)
			bytes.Add(b)
			done.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return arm, err
	}
	arm.Ready = h.Dist()
	arm.BytesPerClient = float64(bytes.Load()) / float64(n)
	return arm, nil
}

// snapshot is the eager boot payload: the whole team, parsed into the objects a client keeps.
type snapshot struct {
	Team        client.Team       `json:"team"`
	Users       []client.User     `json:"users"`
	Channels    []client.Channel  `json:"channels"`
	Memberships []json.RawMessage `json:"memberships"`
}

// eagerBoot is a client booting the way they did before the edge: the whole team from the
// main region (the origin's snapshot), parsed before the client can render anything.
func eagerBoot(ctx context.Context, hc *http.Client, originURL, originToken, team string) error {
	body, err := getSnapshot(ctx, hc, originURL, originToken, team)
	if err != nil {
		return fmt.Errorf("loadtest: eager boot: %w", err)
	}
	defer body.Close()
	var s snapshot
	if err := json.NewDecoder(body).Decode(&s); err != nil {
		return fmt.Errorf("loadtest: eager boot: parsing the snapshot: %w", err)
	}
	if len(s.Users) == 0 {
		return errors.New("loadtest: eager boot: a snapshot without users")
	}
	return nil
}

// snapshotGzipped downloads the snapshot once more, untimed, and returns its gzipped size.
func snapshotGzipped(ctx context.Context, t *Target, team string) (float64, error) {
	body, err := getSnapshot(ctx, t.HTTP, t.OriginURL, t.OriginToken, team)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	var n countWriter
	zw := gzip.NewWriter(&n)
	if _, err := io.Copy(zw, body); err != nil {
		return 0, fmt.Errorf("loadtest: snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return float64(n), nil
}

// getSnapshot asks the origin for team's snapshot and returns its body once the origin has
// answered 200.
func getSnapshot(ctx context.Context, hc *http.Client, originURL, originToken, team string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, originURL+"/origin/v1/teams/"+url.PathEscape(team)+"/snapshot", nil)
	if err != nil {
		return nil, err
	}
	if originToken != "" {
		req.Header.Set("Authorization", "Bearer "+originToken)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("snapshot: HTTP %d", resp.StatusCode)
	}
	return resp.Body, nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// countingClient is an HTTP client of its own (its own connections) that counts the bytes it
// reads off the network, headers and frames included.
func countingClient() (*http.Client, *atomic.Int64) {
	var n atomic.Int64
	d := &net.Dialer{Timeout: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: &n}, nil
		},
		DisableCompression: true, // count what the server sends, as it sends it
	}
	return &http.Client{Transport: tr}, &n
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// BootReport is the boot scenario's report.
func BootReport(f *BootFigures, workload, command string) *Report {
	r := &Report{Scenario: "boot", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	r.Table = [][]string{
		{"", "clients", "cold (ms)", "p50 (ms)", "p90 (ms)", "p99 (ms)", "bytes per client"},
		{"lazy (weft boot)", fmt.Sprint(f.Lazy.Clients), ms(f.Lazy.ColdMS), ms(f.Lazy.Ready.P50), ms(f.Lazy.Ready.P90), ms(f.Lazy.Ready.P99), bytesIEC(f.Lazy.BytesPerClient)},
		{"eager (team snapshot)", fmt.Sprint(f.Eager.Clients), ms(f.Eager.ColdMS), ms(f.Eager.Ready.P50), ms(f.Eager.Ready.P90), ms(f.Eager.Ready.P99), bytesIEC(f.Eager.BytesPerClient)},
		{"eager ÷ lazy", "", "", fmt.Sprintf("%.0f×", f.ReadyP50Ratio), "", "", fmt.Sprintf("%.0f×", f.BytesRatio)},
		{"eager gzipped ÷ lazy", "", "", "", "", "", fmt.Sprintf("%.0f× (%s)", f.GzipRatio, bytesIEC(f.EagerGzipBytes))},
	}
	r.Notes = []string{
		fmt.Sprintf("team %s: %d users, %d channels", f.Team, f.TeamUsers, f.TeamChannels),
		"cold: the first client alone; lazy cold includes the edge loading the team from the origin",
		"ready: connect + hello + boot (lazy) or download + parse the snapshot (eager), the other clients",
		"bytes: what each client read off the network, HTTP headers included, uncompressed as both servers send it; gzipped: the snapshot compressed once, as an origin that compressed it would send it",
	}
	return r
}
