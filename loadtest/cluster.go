package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin/reference"
)

// Proc is one weft child process of a Cluster.
type Proc struct {
	*child
	Name string
	URL  string // http://host:port of its client endpoints (origin: its base URL)
	// OpsURL is the http://host:port of an edge's or a weft proxy's operator listener, where
	// its /metrics is.
	OpsURL string
}

// startProc runs bin args and waits until its stdout has matched every one of want; it returns
// the first group of each. The first is the Proc's URL.
func startProc(ctx context.Context, name, bin string, args []string, stderr io.Writer, timeout time.Duration,
	want ...*regexp.Regexp) (*Proc, []string, error) {
	found := make(chan []string, 1)
	c, err := startChild(name, exec.Command(bin, args...), stderr, func(stdout io.Reader) {
		sc := bufio.NewScanner(stdout)
		got, n := make([]string, len(want)), 0
		for sc.Scan() {
			for i, re := range want {
				if m := re.FindStringSubmatch(sc.Text()); m != nil && got[i] == "" {
					got[i] = m[1]
					if n++; n == len(want) {
						found <- got
					}
				}
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	p := &Proc{child: c, Name: name}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case got := <-found:
		p.URL = got[0]
		return p, got, nil
	case <-p.exited:
		return nil, nil, fmt.Errorf("loadtest: %s exited before it was up: %v", name, p.waitErr)
	case <-ctx.Done():
		p.Kill()
		return nil, nil, fmt.Errorf("loadtest: %s printed no address: %w", name, ctx.Err())
	}
}

// ClusterConfig configures StartCluster. Zero values mean the defaults on each field.
type ClusterConfig struct {
	Bin string // the weft binary (see Build); required
	// Edges and Proxies count the processes; defaults 3 and 2.
	Edges, Proxies int
	// Size is the origin's world; default "small". Rate is its live activity in events/s.
	Size string
	Rate float64
	// EdgeArgs and ProxyArgs are extra flags for every edge and proxy (ProxyArgs: weft's only).
	EdgeArgs, ProxyArgs []string
	// Front is what stands in front of the edges: FrontWeft (the default: weft proxies over
	// edges in a ring) or FrontNginx (Proxies nginx servers hashing on ?team= over standalone
	// edges: the baseline of a plain consistent-hash reverse proxy, see nginx.go) or
	// FrontRelay (Proxies plain Go TCP relays, each to the first of standalone edges: see
	// relay.go; RelayBin runs them).
	Front    string
	RelayBin string // the weft-loadtest binary, for FrontRelay
	// Dir holds the JetStream store; "" means a temporary directory removed by Close.
	Dir    string
	Stderr io.Writer // the children's logs; nil discards them
	// StartTimeout bounds each child's start; default 60s.
	StartTimeout time.Duration
}

// Cluster is weft as separate processes on loopback: the reference origin (which runs the
// NATS server with JetStream), edges that announce themselves on it, and proxies in front.
type Cluster struct {
	Origin  *Proc
	NATSURL string
	Edges   []*Proc
	Proxies []*Proc
	Keys    *token.Keys // issues client tokens the cluster accepts
	HTTP    *http.Client
	Front   string // FrontWeft, FrontNginx or FrontRelay

	tmpDir string
}

// clusterSecret is the token secret of a test cluster: loopback only, so it need not be secret.
const clusterSecret = "weft-loadtest-cluster-secret"

// OriginToken is the service token a Cluster's origin asks of its callers.
const OriginToken = "weft-loadtest-origin"

var (
	originLine = regexp.MustCompile(`^\s+origin\s+(http://[^/\s]+)`)
	natsLine   = regexp.MustCompile(`^\s+nats\s+(\S+)`)
	edgeLine   = regexp.MustCompile(`^weft edge \S+: (http://\S+)`)
	edgeOps    = regexp.MustCompile(`^weft edge \S+ ops: (http://\S+)`)
	proxyLine  = regexp.MustCompile(`^weft proxy: (http://\S+)`)
	proxyOps   = regexp.MustCompile(`^weft proxy ops: (http://\S+)`)
	relayLine  = regexp.MustCompile(`^tcp-relay: (http://\S+)`)
)

// StartCluster starts the origin, then the edges, then the proxies, and returns once every
// proxy's ring holds every edge (its /readyz and metrics say so).
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Bin == "" {
		return nil, errors.New("loadtest: ClusterConfig.Bin is required")
	}
	if cfg.Edges <= 0 {
		cfg.Edges = 3
	}
	if cfg.Proxies <= 0 {
		cfg.Proxies = 2
	}
	if cfg.Size == "" {
		cfg.Size = "small"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	switch cfg.Front {
	case "":
		cfg.Front = FrontWeft
	case FrontWeft, FrontNginx:
	case FrontRelay:
		if cfg.RelayBin == "" {
			return nil, errors.New("loadtest: ClusterConfig.RelayBin is required for the relay front")
		}
	default:
		return nil, fmt.Errorf("loadtest: front %q: want %s, %s or %s", cfg.Front, FrontWeft, FrontNginx, FrontRelay)
	}
	keys, err := token.New([]byte(clusterSecret))
	if err != nil {
		return nil, err
	}
	c := &Cluster{Keys: keys, HTTP: &http.Client{Transport: newTransport()}, Front: cfg.Front}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weft-cluster-"); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
		c.tmpDir = dir
	}
	fail := func(err error) (*Cluster, error) {
		c.Close()
		return nil, err
	}
	var got []string
	c.Origin, got, err = startProc(ctx, "origin", cfg.Bin, []string{"origin", "--addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0",
		"--nats-store", filepath.Join(dir, "jetstream"), "--size", cfg.Size, "--rate", fmt.Sprint(cfg.Rate),
		"--token", OriginToken, "--log-level", "warn"}, cfg.Stderr, cfg.StartTimeout, originLine, natsLine)
	if err != nil {
		return fail(err)
	}
	c.NATSURL = got[1]
	for i := 1; i <= cfg.Edges; i++ {
		name := fmt.Sprintf("edge-%d", i)
		args := []string{"edge", "--addr", "127.0.0.1:0", "--node", name, "--nats", c.NATSURL,
			"--origin", c.Origin.URL, "--origin-token", OriginToken, "--token-secret", clusterSecret,
			"--ops-addr", "127.0.0.1:0", "--log-level", "warn"}
		if cfg.Front != FrontWeft {
			args = append(args, "--standalone")
		}
		args = append(args, cfg.EdgeArgs...)
		p, got, err := startProc(ctx, name, cfg.Bin, args, cfg.Stderr, cfg.StartTimeout, edgeLine, edgeOps)
		if err != nil {
			return fail(err)
		}
		p.OpsURL = got[1]
		c.Edges = append(c.Edges, p)
	}
	for i := 1; i <= cfg.Proxies && cfg.Front == FrontNginx; i++ {
		p, err := startNginx(ctx, fmt.Sprintf("nginx-%d", i), dir, c.Edges, cfg.Stderr, cfg.StartTimeout)
		if err != nil {
			return fail(err)
		}
		c.Proxies = append(c.Proxies, p)
	}
	for i := 1; i <= cfg.Proxies && cfg.Front == FrontRelay; i++ {
		p, _, err := startProc(ctx, fmt.Sprintf("relay-%d", i), cfg.RelayBin,
			[]string{RelayCommand, strings.TrimPrefix(c.Edges[0].URL, "http://")}, cfg.Stderr, cfg.StartTimeout, relayLine)
		if err != nil {
			return fail(err)
		}
		c.Proxies = append(c.Proxies, p)
	}
	for i := 1; i <= cfg.Proxies && cfg.Front == FrontWeft; i++ {
		args := append([]string{"proxy", "--addr", "127.0.0.1:0", "--nats", c.NATSURL, "--token-secret", clusterSecret,
			"--ops-addr", "127.0.0.1:0", "--log-level", "warn"}, cfg.ProxyArgs...)
		p, got, err := startProc(ctx, fmt.Sprintf("proxy-%d", i), cfg.Bin, args, cfg.Stderr, cfg.StartTimeout, proxyLine, proxyOps)
		if err != nil {
			return fail(err)
		}
		p.OpsURL = got[1]
		c.Proxies = append(c.Proxies, p)
	}
	for _, p := range c.Proxies {
		if c.Front != FrontWeft {
			break
		}
		if err := c.WaitRing(ctx, p, len(c.Edges), cfg.StartTimeout); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// WaitRing waits until proxy p reports n edges in its ring.
func (c *Cluster) WaitRing(ctx context.Context, p *Proc, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := fmt.Sprintf("weft_proxy_ring_edges %d\n", n)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.OpsURL+"/metrics", nil)
		if resp, err := c.HTTP.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadtest: %s never saw %d edges: %w", p.Name, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// WSURL is the WebSocket URL a client of team dials through proxy p: nginx hashes on the
// team it names; weft's proxy reads the team from the token.
func (c *Cluster) WSURL(p *Proc, team string) string {
	u := "ws" + strings.TrimPrefix(p.URL, "http") + "/ws"
	if c.Front == FrontNginx {
		u += "?team=" + url.QueryEscape(team)
	}
	return u
}

// Token issues a client token for user in team.
func (c *Cluster) Token(team, user string) (string, error) {
	return c.Keys.Issue(team, user, time.Hour)
}

// Close stops the proxies, then the edges (they drain), then the origin, and removes the
// temporary directory.
func (c *Cluster) Close() error {
	var errs []error
	for _, group := range [][]*Proc{c.Proxies, c.Edges, {c.Origin}} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range group {
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.terminate(20 * time.Second); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	c.HTTP.CloseIdleConnections()
	if c.tmpDir != "" {
		_ = os.RemoveAll(c.tmpDir)
	}
	return errors.Join(errs...)
}

// worldTeams lists the teams of the reference origin's world of size with the default seed
// (1), which is what a Cluster's origin serves.
func worldTeams(size string) ([]string, error) {
	sz, err := reference.SizeByName(size)
	if err != nil {
		return nil, err
	}
	w, err := reference.NewWorld(1, sz)
	if err != nil {
		return nil, err
	}
	return w.TeamIDs(), nil
}
