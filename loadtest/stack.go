package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Build compiles the weft command of the module this package belongs to into dir and returns
// the binary's path. It runs `go build`, so the first call after a change takes a while and the
// next ones reuse the build cache.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "weft")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/weft-edge/weft/cmd/weft")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadtest: go build weft: %w\n%s", err, out)
	}
	return bin, nil
}

// DevConfig configures a `weft dev` child process. The zero value of every field but Bin is
// its default.
type DevConfig struct {
	// Bin is the weft binary (see Build). Required.
	Bin string
	// Args are extra flags, after the ones StartDev always passes: every listener on a free
	// loopback port (--addr, --origin-addr, --nats-addr 127.0.0.1:0), --rate 0 (no background
	// activity), no connection or request quotas, the JetStream store under Dir and
	// --log-level warn. A flag given here again
	// wins (the last one counts).
	Args []string
	// Dir holds the child's JetStream store. "" means a temporary directory removed by Close.
	Dir string
	// Stderr receives the child's log. nil discards it.
	Stderr io.Writer
	// StartTimeout bounds the wait for the printed URLs and for /readyz; default 60s.
	StartTimeout time.Duration
}

// DevToken is one of the ready-made tokens `weft dev` prints.
type DevToken struct {
	Team, User, Token string
}

// DevInfo is what `weft dev` prints at start.
type DevInfo struct {
	EdgeURL  string // http://host:port clients connect to: the edge, or the proxy of --edges N
	ProxyURL string // the proxy's, when there is one
	// OpsURL is the operator listener of the edge, or of the home proxy (--edges, --regions):
	// its /metrics.
	OpsURL    string
	OriginURL string // http://host:port of the reference origin
	NATSURL   string
	Tokens    []DevToken
	// Regions are the regions of `weft dev --regions N`, home first; EdgeURL is then the home
	// region's proxy.
	Regions []DevRegion
	// ControlURL is `weft dev --regions`'s control endpoint (dev only: kills and starts a
	// region's edges).
	ControlURL string
}

// DevRegion is one region of `weft dev --regions N`: its proxy and its round trip to home.
type DevRegion struct {
	Name     string
	ProxyURL string
	RTT      time.Duration // 0 at home
}

// WSURL is the edge's WebSocket endpoint.
func (d DevInfo) WSURL() string { return "ws" + strings.TrimPrefix(d.EdgeURL, "http") + "/ws" }

// Stack is a running `weft dev` child process. Close stops it.
type Stack struct {
	DevInfo
	// HTTP is the client for the stack's HTTP endpoints and WebSocket handshakes; Close
	// closes its idle connections.
	HTTP *http.Client

	*child
	tmpDir string // removed by Close; "" when DevConfig.Dir was given
	close  sync.Once
}

// StartDev starts `weft dev` and returns once it has printed its URLs and the edge answers
// /readyz. The child is killed if this process dies first (on Linux).
func StartDev(ctx context.Context, cfg DevConfig) (*Stack, error) {
	if cfg.Bin == "" {
		return nil, errors.New("loadtest: DevConfig.Bin is required")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	s := &Stack{HTTP: &http.Client{Transport: newTransport()}}
	dir := cfg.Dir
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weft-loadtest-"); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
		s.tmpDir = dir
	}
	args := append([]string{"dev", "--addr", "127.0.0.1:0", "--origin-addr", "127.0.0.1:0",
		"--nats-addr", "127.0.0.1:0", "--nats-store", filepath.Join(dir, "jetstream"),
		"--rate", "0", "--log-level", "warn",
		// The scenarios measure paths and capacity, not quotas: no rate limits unless Args
		// ask for them.
		"--connect-rate", "-1", "--team-connect-rate", "-1", "--request-rate", "-1"}, cfg.Args...)
	parsed := make(chan error, 1)
	s.child, err = startChild("weft dev", exec.Command(cfg.Bin, args...), cfg.Stderr, func(stdout io.Reader) {
		info, err := parseDevOutput(stdout)
		s.DevInfo = info
		parsed <- err
	})
	if err != nil {
		s.removeTmp()
		return nil, err
	}
	if err := s.awaitStart(ctx, parsed, cfg.StartTimeout); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) awaitStart(ctx context.Context, parsed <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case err := <-parsed:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("loadtest: weft dev printed no URLs: %w", ctx.Err())
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.EdgeURL+"/readyz", nil)
		resp, err := s.HTTP.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("loadtest: weft dev exited: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("loadtest: edge not ready: %w (last error %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the child: SIGTERM, so the edge drains and the embedded NATS shuts down, then
// SIGKILL if it has not exited within 15s. It removes the temporary directory StartDev made.
// Close is idempotent and returns nil when the child ended by the signal.
func (s *Stack) Close() error {
	var err error
	s.close.Do(func() {
		defer s.removeTmp()
		defer s.HTTP.CloseIdleConnections()
		if err = s.terminate(15 * time.Second); err != nil {
			return
		}
		var exit *exec.ExitError
		if s.waitErr != nil && !(errors.As(s.waitErr, &exit) && exit.ExitCode() == -1) { // -1: the signal
			err = fmt.Errorf("loadtest: weft dev: %w", s.waitErr)
		}
	})
	return err
}

func (s *Stack) removeTmp() {
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

// RSS returns the child's resident set size in bytes, from /proc/<pid>/status.
func (s *Stack) RSS() (int64, error) { return procStatusBytes(s.PID(), "VmRSS") }

// Metrics reads the edge's /metrics (on its operator listener) and returns the values of the
// named unlabelled series (go_memstats_heap_inuse_bytes, go_goroutines, weft_edge_connections,
// …). A name the edge does not export is an error.
func (s *Stack) Metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	return readMetrics(ctx, s.HTTP, s.OpsURL, names)
}

// readMetrics reads base's /metrics and picks the named unlabelled series out of it.
func readMetrics(ctx context.Context, hc *http.Client, base string, names []string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadtest: GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadtest: GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body, names)
}

// parseMetrics picks the named unlabelled series out of Prometheus text format.
func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	got := make(map[string]float64, len(names))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("loadtest: metric %s: %w", name, err)
		}
		got[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadtest: reading metrics: %w", err)
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("loadtest: metric %s not exported", n)
		}
	}
	return got, nil
}

// parseDevOutput reads what `weft dev` prints up to its "try:" line:
//
//	  edge    http://127.0.0.1:8080   (WebSocket ws://…/ws)
//	  ops     http://127.0.0.1:39011   (metrics, …)
//	  origin  http://127.0.0.1:8081
//	  nats    nats://127.0.0.1:4222
//	tokens (24h):
//	  T00000000 U00000000 sakura.nakamura        eyJ…
//	try:
func parseDevOutput(r io.Reader) (DevInfo, error) {
	var d DevInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	tokens := false
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case strings.TrimSpace(line) == "try:":
			if d.EdgeURL == "" || d.OriginURL == "" || len(d.Tokens) == 0 {
				return d, fmt.Errorf("loadtest: weft dev printed no edge URL, origin URL or tokens: %+v", d)
			}
			return d, nil
		case strings.HasPrefix(line, "tokens"):
			tokens = true
		case len(f) >= 4 && f[0] == "region" && f[2] == "proxy":
			d.Regions = append(d.Regions, parseDevRegion(f))
			if len(d.Regions) == 1 { // home: where clients connect by default
				d.EdgeURL, d.ProxyURL = f[3], f[3]
			}
		case len(f) >= 2 && f[0] == "ops":
			d.OpsURL = f[1]
		case len(f) >= 2 && f[0] == "control":
			d.ControlURL = f[1]
		case len(f) >= 2 && f[0] == "edge":
			d.EdgeURL = f[1]
		case len(f) >= 2 && f[0] == "proxy":
			d.EdgeURL, d.ProxyURL = f[1], f[1]
		case len(f) >= 2 && f[0] == "origin":
			d.OriginURL = f[1]
		case len(f) >= 2 && f[0] == "nats":
			d.NATSURL = f[1]
		case tokens && len(f) >= 3 && strings.HasPrefix(f[0], "T") && strings.HasPrefix(f[1], "U"):
			d.Tokens = append(d.Tokens, DevToken{Team: f[0], User: f[1], Token: f[len(f)-1]})
		}
	}
	if err := sc.Err(); err != nil {
		return d, fmt.Errorf("loadtest: reading weft dev's output: %w", err)
	}
	return d, errors.New("loadtest: weft dev's output ended before its URLs and tokens")
}

// parseDevRegion reads a region's line of `weft dev --regions N` (its fields):
//
//	region a    proxy http://127.0.0.1:36017   (WebSocket …; 80ms round trip to home, NATS leaf …)
func parseDevRegion(f []string) DevRegion {
	r := DevRegion{Name: f[1], ProxyURL: f[3]}
	for i := 4; i+3 < len(f); i++ {
		if f[i+1] == "round" && f[i+2] == "trip" {
			if d, err := time.ParseDuration(strings.TrimPrefix(f[i], "(")); err == nil {
				r.RTT = d
			}
		}
	}
	return r
}

// withoutWeftEnv drops the WEFT_ variables, the environment twins of weft's flags.
func withoutWeftEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "WEFT_") {
			out = append(out, kv)
		}
	}
	return out
}

// newTransport is an HTTP transport for many handshakes to one host: no per-host cap, and a
// few idle connections kept for the admin and metrics requests.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 8
	return t
}
