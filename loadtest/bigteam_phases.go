package loadtest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/internal/sleep"
)

// The bigteam scenario's phases (see bigteam.go) and the process readings they take.

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
			if err := sleep.For(ctx, cfg.PacedEvery); err != nil {
				return nil, err
			}
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

// settledRSS is pid's RSS once it has stopped moving (settled).
func settledRSS(ctx context.Context, pid int) (int64, error) {
	return settled(ctx, func() (int64, error) { return procStatusBytes(pid, "VmRSS") })
}

// settled is what read reads once it has stopped moving: two readings a second apart within
// 1% (at most 20 tries).
func settled(ctx context.Context, read func() (int64, error)) (int64, error) {
	prev, err := read()
	if err != nil {
		return 0, err
	}
	for range 20 {
		if err := sleep.For(ctx, time.Second); err != nil {
			return 0, err
		}
		cur, err := read()
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
	if err := sleep.For(ctx, d); err != nil {
		return 0, err
	}
	c1, err := pidsCPU([]int{pid})
	if err != nil {
		return 0, err
	}
	return float64(c1-c0) / float64(time.Millisecond) / d.Seconds(), nil
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
