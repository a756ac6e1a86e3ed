package loadtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin/reference"
)

// The bigteam scenario: one big team's sessions on one server, weft's edge (`weft dev`) and,
// in the same run on the same machine, a server on the centrifuge library (centrifuge.go)
// serving the same clients the same load. Per server and run:
//
//   - idle: Sessions cheap clients (cheap.go) in worker processes connect; RSS per session is
//     the RSS they added over the server's RSS with only the probers connected;
//   - paced: one team-wide event per second, each stamped with its publish time: the
//     publish-to-receive latency of every delivery, and the users.info round trip of Probers
//     other sessions (in this process) asking every ProbeEvery meanwhile; and CPU per
//     delivery, the server's less what the probers cost it (measured alone just before);
//   - burst: Burst team-wide events published at once: server and client CPU per delivery,
//     and deliveries per second.
//
// No server can deliver an event to its last recipient sooner than the CPU of all its
// deliveries, the server's and the clients' (which share the machine), spread over the
// machine's cores: that floor, from the paced phase's CPU per delivery, is reported beside
// each p99. Everything runs Runs times (weft then centrifuge, each on a fresh process) and each
// figure is reported with its spread.

// BigTeamConfig configures RunBigTeam. Zero values are the defaults given.
type BigTeamConfig struct {
	// WeftBin is the weft binary; WorkerBin is the program the client workers and the
	// centrifuge server run (`WorkerBin cheap-worker`, `WorkerBin centrifuge-server`):
	// weft-loadtest itself. Both required.
	WeftBin, WorkerBin string
	// Size is the world `weft dev` serves; default 32k. Its first team is the big team.
	Size string
	// DevArgs are more flags for `weft dev`.
	DevArgs []string
	// Servers are the servers to measure, in order: "weft", "centrifuge"; default both.
	Servers []string
	// Sessions is how many sessions of the team connect; default 10,000, PerWorker (default
	// 5,000) per worker process, at nice WorkerNice (default 10: they stand in for devices
	// elsewhere).
	Sessions, PerWorker, WorkerNice int
	// Probers are the other sessions asking users.info every ProbeEvery during the paced
	// phase; default 100 every 100ms.
	Probers    int
	ProbeEvery time.Duration
	// Paced is how many events the paced phase publishes, one per PacedEvery; default 20,
	// one a second.
	Paced      int
	PacedEvery time.Duration
	// Burst is how many events the burst publishes at once; default 200.
	Burst int
	// Runs is how many times everything runs; default 3.
	Runs     int
	Stderr   io.Writer
	Progress io.Writer
}

// BigTeamServer is one server's figures in one run.
type BigTeamServer struct {
	Server   string `json:"server"`
	Sessions int    `json:"sessions"`
	// RSSBase is the server's RSS with the probers connected, RSS with every session too.
	RSSBase          int64   `json:"rss_base_bytes"`
	RSS              int64   `json:"rss_bytes"`
	IdleBytesPerConn float64 `json:"idle_bytes_per_session"`
	Paced            Dist    `json:"paced"`
	Probe            Dist    `json:"probe"`
	BurstDeliveries  int64   `json:"burst_deliveries"`
	BurstSeconds     float64 `json:"burst_seconds"`
	DeliveriesPerSec float64 `json:"deliveries_per_second"`
	ServerNSPerDeliv float64 `json:"server_cpu_ns_per_delivery"`
	ClientNSPerDeliv float64 `json:"client_cpu_ns_per_delivery"`
	FloorMS          float64 `json:"floor_ms"` // per paced event, see the scenario's comment
	// PacedServerNS and PacedClientNS are CPU per delivery in the paced phase: the server's
	// (less what the probers cost it, ProbeCPUMS per second, measured alone just before) and
	// the workers' clients'.
	PacedServerNS     float64 `json:"paced_server_cpu_ns_per_delivery"`
	PacedClientNS     float64 `json:"paced_client_cpu_ns_per_delivery"`
	ProbeCPUMS        float64 `json:"probe_server_cpu_ms_per_s"`
	PacedDeliveries   int64   `json:"paced_deliveries"`
	Failed            int64   `json:"failed_sessions"`
	FirstClientError  string  `json:"first_client_error,omitempty"`
	ServerCPUAtIdleMS float64 `json:"server_cpu_idle_ms_per_s"`
}

// BigTeamFigures is what RunBigTeam measured.
type BigTeamFigures struct {
	Team     string            `json:"team"`
	Sessions int               `json:"sessions"`
	Probers  int               `json:"probers"`
	Paced    int               `json:"paced_events"`
	Burst    int               `json:"burst_events"`
	Cores    int               `json:"cores"`
	Runs     [][]BigTeamServer `json:"runs"` // per run, per server
}

// bigTeamWorld is what every run needs of the world, read once.
type bigTeamWorld struct {
	team    string
	users   []string // the sessions' users, then the probers'
	tokens  []string
	subject json.RawMessage // the user whose user_change the events are
	cent    centrifugeConfig
}

// RunBigTeam runs the bigteam scenario.
func RunBigTeam(ctx context.Context, cfg BigTeamConfig) (*BigTeamFigures, error) {
	if cfg.WeftBin == "" || cfg.WorkerBin == "" {
		return nil, errors.New("loadtest: bigteam needs the weft binary and the worker program")
	}
	cfg.Size = cmp.Or(cfg.Size, "32k")
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{"weft", "centrifuge"}
	}
	cfg.Sessions = cmp.Or(cfg.Sessions, 10_000)
	cfg.PerWorker = cmp.Or(cfg.PerWorker, 5_000)
	cfg.WorkerNice = cmp.Or(cfg.WorkerNice, 10)
	cfg.Probers = cmp.Or(cfg.Probers, 100)
	cfg.ProbeEvery = cmp.Or(cfg.ProbeEvery, 100*time.Millisecond)
	cfg.Paced = cmp.Or(cfg.Paced, 20)
	cfg.PacedEvery = cmp.Or(cfg.PacedEvery, time.Second)
	cfg.Burst = cmp.Or(cfg.Burst, 200)
	cfg.Runs = cmp.Or(cfg.Runs, 3)
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if _, err := RaiseFileLimit(); err != nil {
		return nil, err
	}
	f := &BigTeamFigures{Sessions: cfg.Sessions, Probers: cfg.Probers, Paced: cfg.Paced, Burst: cfg.Burst, Cores: runtime.NumCPU()}
	var w *bigTeamWorld
	for run := range cfg.Runs {
		var servers []BigTeamServer
		for _, name := range cfg.Servers {
			r := &bigTeamRun{cfg: cfg, run: run}
			var s *BigTeamServer
			var err error
			switch name {
			case "weft":
				s, w, err = r.weft(ctx, w)
			case "centrifuge":
				if w == nil {
					return nil, errors.New("loadtest: bigteam: centrifuge needs weft first (its world comes from weft's origin)")
				}
				s, err = r.centrifuge(ctx, w)
			default:
				return nil, fmt.Errorf("loadtest: bigteam: server %q: want weft or centrifuge", name)
			}
			if err != nil {
				return f, fmt.Errorf("run %d, %s: %w", run+1, name, err)
			}
			servers = append(servers, *s)
		}
		f.Runs = append(f.Runs, servers)
	}
	f.Team = w.team
	return f, nil
}

// bigTeamRun is one server's run.
type bigTeamRun struct {
	cfg   BigTeamConfig
	run   int
	phase atomic.Value // string, for the progress line
}

// bigTeamServer is what a run drives: a server under measurement.
type bigTeamServer struct {
	name, proto, wsURL string
	pid                int
	heartbeat          time.Duration
	// stamped publishes one team-wide event stamped with now; burst publishes n at once.
	stamped func(ctx context.Context) error
	burst   func(ctx context.Context, n int) error
	// sessions is how many sessions the server holds.
	sessions func(ctx context.Context) (int, error)
}

func (r *bigTeamRun) weft(ctx context.Context, w *bigTeamWorld) (*BigTeamServer, *bigTeamWorld, error) {
	r.phase.Store("starting weft dev")
	t, err := Spawn(ctx, r.cfg.WeftBin, r.cfg.Stderr, append([]string{"--size", r.cfg.Size}, r.cfg.DevArgs...)...)
	if err != nil {
		return nil, nil, err
	}
	defer t.Close()
	if w == nil {
		if w, err = r.world(ctx, t); err != nil {
			return nil, nil, err
		}
	}
	var subject struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(w.subject, &subject)
	srv := &bigTeamServer{name: "weft", proto: protoWeft, wsURL: t.WSURL(), pid: t.Stack().PID(), heartbeat: 30 * time.Second,
		stamped: func(ctx context.Context) error { return postTimed(ctx, t, w.team, subject.ID) },
		burst: func(ctx context.Context, n int) error {
			title := "burst"
			_, err := PostEvents(ctx, t.HTTP, t.OriginURL, t.OriginToken, w.team,
				reference.EventsRequest{Type: "user_change", User: subject.ID, Title: &title, Count: n})
			return err
		},
		sessions: func(ctx context.Context) (int, error) {
			m, err := t.Metrics(ctx, "weft_edge_connections")
			return int(m["weft_edge_connections"]), err
		},
	}
	s, err := r.measure(ctx, srv, w)
	return s, w, err
}

func (r *bigTeamRun) centrifuge(ctx context.Context, w *bigTeamWorld) (*BigTeamServer, error) {
	r.phase.Store("starting the centrifuge server")
	c, err := startCentrifuge(ctx, r.cfg.WorkerBin, w.cent, r.cfg.Stderr)
	if err != nil {
		return nil, err
	}
	defer c.close()
	// The same user_change as weft's events carry: the subject user with its title set.
	body := func(title string) []byte {
		var u map[string]any
		_ = json.Unmarshal(w.subject, &u)
		u["title"] = title
		b, _ := json.Marshal(map[string]any{"type": "user_change", "user": u})
		return b
	}
	srv := &bigTeamServer{name: "centrifuge", proto: protoCentrifuge, wsURL: c.wsURL(), pid: c.PID(),
		stamped: func(ctx context.Context) error {
			return c.publish(ctx, w.team, body(timedPrefix+strconv.FormatInt(time.Now().UnixNano(), 10)), 1)
		},
		burst:    func(ctx context.Context, n int) error { return c.publish(ctx, w.team, body("burst"), n) },
		sessions: c.clients,
	}
	return r.measure(ctx, srv, w)
}

// world reads the team, its users and their tokens from the first weft stack.
func (r *bigTeamRun) world(ctx context.Context, t *Target) (*bigTeamWorld, error) {
	team, err := t.team("")
	if err != nil {
		return nil, err
	}
	raw, err := originPages[json.RawMessage](ctx, t.HTTP, t.OriginURL, t.OriginToken, team, "users")
	if err != nil {
		return nil, err
	}
	w := &bigTeamWorld{team: team, cent: centrifugeConfig{Secret: token.DevSecret, Users: map[string]map[string]json.RawMessage{team: {}}}}
	for _, u := range raw {
		var id struct {
			ID      string `json:"id"`
			Deleted bool   `json:"deleted"`
		}
		if json.Unmarshal(u, &id) != nil || id.ID == "" {
			continue
		}
		w.cent.Users[team][id.ID] = u
		if !id.Deleted {
			w.users = append(w.users, id.ID)
		}
	}
	need := r.cfg.Sessions + r.cfg.Probers + 1
	if len(w.users) < need {
		return nil, fmt.Errorf("loadtest: team %s has %d active users, the run needs %d", team, len(w.users), need)
	}
	w.subject = w.cent.Users[team][w.users[need-1]] // a user with no session: its events are everyone's
	w.users = w.users[:need-1]
	for _, u := range w.users {
		tok, err := t.Token(team, u)
		if err != nil {
			return nil, err
		}
		w.tokens = append(w.tokens, tok)
	}
	return w, nil
}

// measure runs the three phases against srv.
func (r *bigTeamRun) measure(ctx context.Context, srv *bigTeamServer, w *bigTeamWorld) (*BigTeamServer, error) {
	cfg := r.cfg
	out := &BigTeamServer{Server: srv.name, Sessions: cfg.Sessions}
	stop := Progress(cfg.Progress, 2*time.Second, func() string {
		return fmt.Sprintf("bigteam: run %d of %d, %s: %v", r.run+1, cfg.Runs, srv.name, r.phase.Load())
	})
	defer stop()
	pctx, cancelProbers := context.WithCancel(ctx)
	probers := newCheapGroup()
	defer func() { cancelProbers(); probers.close() }()

	// The probers first: the team is loaded, and the baseline is taken with them connected.
	r.phase.Store("probers connecting")
	if err := probers.dial(ctx, srv.proto, srv.wsURL, w.tokens[cfg.Sessions:], 16); err != nil {
		return nil, fmt.Errorf("probers: %w", err)
	}
	if srv.heartbeat > 0 {
		probers.keepAlive(pctx, srv.heartbeat)
	}
	if err := waitSessions(ctx, srv, cfg.Probers); err != nil {
		return nil, err
	}
	base, err := settledRSS(ctx, srv.pid)
	if err != nil {
		return nil, err
	}
	out.RSSBase = base

	// Idle: the sessions, in workers.
	r.phase.Store("sessions connecting")
	var workers []*cheapWorker
	defer func() {
		for _, wk := range workers {
			wk.stop()
		}
	}()
	for i := 0; i < cfg.Sessions; i += cfg.PerWorker {
		plan := cheapPlan{Proto: srv.proto, URL: srv.wsURL, Tokens: w.tokens[i:min(i+cfg.PerWorker, cfg.Sessions)],
			Parallel: 32, Heartbeat: srv.heartbeat}
		wk, err := startCheapWorker(cfg.WorkerBin, plan, cfg.WorkerNice, cfg.Stderr)
		if err != nil {
			return nil, err
		}
		workers = append(workers, wk)
	}
	if err := pollUntil(ctx, 5*time.Minute, func() (bool, error) {
		up := 0
		for _, wk := range workers {
			st := wk.state()
			if st.DialErr != "" {
				return false, fmt.Errorf("a worker's dials: %s", st.DialErr)
			}
			up += int(st.Up)
		}
		r.phase.Store(fmt.Sprintf("%d of %d sessions up", up, cfg.Sessions))
		return up == cfg.Sessions, nil
	}); err != nil {
		return nil, err
	}
	if err := waitSessions(ctx, srv, cfg.Sessions+cfg.Probers); err != nil {
		return nil, err
	}
	r.phase.Store("idle: memory settling")
	rss, err := settledRSS(ctx, srv.pid)
	if err != nil {
		return nil, err
	}
	out.RSS = rss
	out.IdleBytesPerConn = float64(rss-base) / float64(cfg.Sessions)
	idleCPU, err := cpuOver(ctx, srv.pid, 2*time.Second)
	if err != nil {
		return nil, err
	}
	out.ServerCPUAtIdleMS = idleCPU

	// The burst, while the probers are still idle.
	r.phase.Store(fmt.Sprintf("burst of %d events", cfg.Burst))
	if err := r.burst(ctx, srv, workers, probers, out); err != nil {
		return nil, err
	}

	// Paced, with the probers asking.
	for _, wk := range workers { // forget the burst's (unstamped) latencies
		if _, err := wk.report(ctx); err != nil {
			return nil, err
		}
	}
	// The probers alone first: their CPU, taken off the paced phase's, leaves the deliveries'.
	probers.probeLoop(pctx, cfg.ProbeEvery, w.users[:cfg.Sessions])
	r.phase.Store("probers alone")
	probeCPU, err := cpuOver(ctx, srv.pid, 3*time.Second)
	if err != nil {
		return nil, err
	}
	probers.lat.reset()
	probers.probe.reset()
	before := eventsOf(workers) + probers.events.Load()
	beforeWorkers := eventsOf(workers)
	s0, err := pidsCPU([]int{srv.pid})
	if err != nil {
		return nil, err
	}
	w0, err := pidsCPU(workerPIDs(workers))
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	for k := range cfg.Paced {
		r.phase.Store(fmt.Sprintf("paced: event %d of %d", k+1, cfg.Paced))
		if k > 0 {
			sleepCtx(ctx, cfg.PacedEvery)
		}
		if err := srv.stamped(ctx); err != nil {
			return nil, fmt.Errorf("publishing: %w", err)
		}
	}
	want := before + int64(cfg.Paced)*int64(cfg.Sessions+cfg.Probers)
	if err := waitDeliveries(ctx, workers, probers, want, &r.phase); err != nil {
		return nil, err
	}
	s1, err := pidsCPU([]int{srv.pid})
	if err != nil {
		return nil, err
	}
	w1, err := pidsCPU(workerPIDs(workers))
	if err != nil {
		return nil, err
	}
	span := time.Since(t0)
	deliveries := float64(int64(cfg.Paced) * int64(cfg.Sessions+cfg.Probers))
	out.PacedServerNS = max(float64(s1-s0)-probeCPU*float64(time.Millisecond)*span.Seconds(), 0) / deliveries
	out.PacedClientNS = float64(w1-w0) / float64(eventsOf(workers)-beforeWorkers)
	out.ProbeCPUMS = probeCPU
	cancelProbers()
	lat := NewHist()
	for _, wk := range workers {
		snap, err := wk.report(ctx)
		if err != nil {
			return nil, err
		}
		lat.mergeSnapshot(snap)
	}
	lat.Merge(probers.lat)
	out.Paced, out.Probe = lat.Dist(), probers.probe.Dist()
	out.PacedDeliveries = out.Paced.N
	out.FloorMS = float64(cfg.Sessions+cfg.Probers) * (out.PacedServerNS + out.PacedClientNS) / float64(runtime.NumCPU()) / 1e6
	for _, wk := range workers {
		st := wk.state()
		out.Failed += st.Failed
		if out.FirstClientError == "" {
			out.FirstClientError = st.Err
		}
	}
	out.Failed += probers.failed.Load()
	if out.Failed > 0 {
		return out, fmt.Errorf("%d sessions ended during the run; the first: %s", out.Failed, out.FirstClientError)
	}
	return out, nil
}

// burst publishes cfg.Burst events at once and measures CPU per delivery.
func (r *bigTeamRun) burst(ctx context.Context, srv *bigTeamServer, workers []*cheapWorker, probers *cheapGroup, out *BigTeamServer) error {
	cfg := r.cfg
	before := eventsOf(workers) + probers.events.Load()
	pids, clientPIDs := []int{srv.pid}, workerPIDs(workers)
	serverCPU0, err := pidsCPU(pids)
	if err != nil {
		return err
	}
	clientCPU0, err := pidsCPU(clientPIDs)
	if err != nil {
		return err
	}
	self0 := SelfCPU()
	start := time.Now()
	if err := srv.burst(ctx, cfg.Burst); err != nil {
		return fmt.Errorf("publishing the burst: %w", err)
	}
	want := before + int64(cfg.Burst)*int64(cfg.Sessions+cfg.Probers)
	if err := waitDeliveries(ctx, workers, probers, want, &r.phase); err != nil {
		return err
	}
	last := lastEventAt(workers, probers)
	serverCPU1, err := pidsCPU(pids)
	if err != nil {
		return err
	}
	clientCPU1, err := pidsCPU(clientPIDs)
	if err != nil {
		return err
	}
	d := float64(int64(cfg.Burst) * int64(cfg.Sessions+cfg.Probers))
	out.BurstDeliveries = int64(d)
	out.BurstSeconds = last.Sub(start).Seconds()
	out.DeliveriesPerSec = d / out.BurstSeconds
	out.ServerNSPerDeliv = float64(serverCPU1-serverCPU0) / d
	out.ClientNSPerDeliv = float64(clientCPU1-clientCPU0+SelfCPU()-self0) / d
	return nil
}

func workerPIDs(workers []*cheapWorker) (pids []int) {
	for _, wk := range workers {
		pids = append(pids, wk.PID())
	}
	return pids
}

func eventsOf(workers []*cheapWorker) (n int64) {
	for _, wk := range workers {
		n += wk.state().Events
	}
	return n
}

func lastEventAt(workers []*cheapWorker, probers *cheapGroup) time.Time {
	last := probers.lastAt.Load()
	for _, wk := range workers {
		last = max(last, wk.state().LastAt)
	}
	return time.Unix(0, last)
}

// waitDeliveries waits until the clients have received want events in all.
func waitDeliveries(ctx context.Context, workers []*cheapWorker, probers *cheapGroup, want int64, phase *atomic.Value) error {
	var got int64
	err := pollUntil(ctx, 3*time.Minute, func() (bool, error) {
		got = eventsOf(workers) + probers.events.Load()
		for _, wk := range workers {
			if st := wk.state(); st.Failed > 0 {
				return false, fmt.Errorf("%d sessions of a worker ended: %s", st.Failed, st.Err)
			}
		}
		return got >= want, nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d deliveries: %w", got, want, err)
	}
	return nil
}

// waitSessions waits until the server says it holds n sessions.
func waitSessions(ctx context.Context, srv *bigTeamServer, n int) error {
	var got int
	err := pollUntil(ctx, time.Minute, func() (bool, error) {
		var err error
		got, err = srv.sessions(ctx)
		return got >= n, err
	})
	if err != nil {
		return fmt.Errorf("the server holds %d of %d sessions: %w", got, n, err)
	}
	return nil
}

// pollUntil polls cond every 20ms until it holds, fails, or within passes.
func pollUntil(ctx context.Context, within time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// settledRSS is pid's RSS once it has stopped moving: two samples a second apart within 1%
// (at most 20 tries).
func settledRSS(ctx context.Context, pid int) (int64, error) {
	prev, err := procStatusBytes(pid, "VmRSS")
	if err != nil {
		return 0, err
	}
	for range 20 {
		sleepCtx(ctx, time.Second)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		cur, err := procStatusBytes(pid, "VmRSS")
		if err != nil {
			return 0, err
		}
		if d := cur - prev; d < cur/100 && -d < cur/100 {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// cpuOver is pid's CPU over d, in ms per second.
func cpuOver(ctx context.Context, pid int, d time.Duration) (float64, error) {
	c0, err := pidsCPU([]int{pid})
	if err != nil {
		return 0, err
	}
	sleepCtx(ctx, d)
	c1, err := pidsCPU([]int{pid})
	if err != nil {
		return 0, err
	}
	return float64(c1-c0) / float64(time.Millisecond) / d.Seconds(), ctx.Err()
}

func pidsCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, p := range pids {
		u, s, err := ProcessCPU(p)
		if err != nil {
			return 0, err
		}
		sum += u + s
	}
	return sum, nil
}

func (h *Hist) reset() {
	h.mu.Lock()
	h.h.Reset()
	h.mu.Unlock()
}

func (h *Hist) mergeSnapshot(s *hdrhistogram.Snapshot) {
	if s == nil {
		return
	}
	o := hdrhistogram.Import(s)
	h.mu.Lock()
	h.h.Merge(o)
	h.mu.Unlock()
}
