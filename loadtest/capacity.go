package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/sleep"
)

// The capacity scenario: on one edge, ramp idle connections (real clients in worker processes,
// so the edge process is the only one holding the sessions' server side), then make them
// active with team-wide events at rising rates, then ask it queries as fast as it answers.
// It reports memory per connection, CPU per 1,000 deliveries, queries per core, and where
// latency starts to bend, measured by a few probe sessions in this process throughout.

// CapacityConfig configures RunCapacity. Zero values are the defaults given.
type CapacityConfig struct {
	// WorkerBin is the program the client worker processes run, as `WorkerBin storm-worker`
	// (see WorkerCommand): weft-loadtest itself. Required.
	WorkerBin string
	Team      string
	// Steps are the idle connection counts to ramp through; default 2,000 to 10,000 by 2,000.
	Steps []int
	// PerWorker is the most clients one worker process holds; default 5,000. Each step's
	// new connections go to new workers.
	PerWorker int
	// Rates are the team-wide events per second of the active steps; default 1, 2, 5, 10, 20.
	// Each event goes to every connection.
	Rates []float64
	// StepFor is how long each active step and the query step last; default 10s.
	StepFor time.Duration
	// Probers are sessions in this process that send users.info every ProbeEvery and time
	// the events they receive; default 20 every 100ms.
	Probers    int
	ProbeEvery time.Duration
	// QuerySessions ask queries back to back in the query step; default 32.
	QuerySessions int
	// WorkerNice is the workers' nice value (they stand in for devices elsewhere); default 10.
	WorkerNice int
	Stderr     io.Writer
	Progress   io.Writer
}

// capRun is one capacity run's moving parts.
type capRun struct {
	cfg     CapacityConfig
	t       *Target
	w       *queryWorld
	pr      *probers
	workers []*stormWorker
	phase   atomic.Value // string, for the progress line
}

// RunCapacity runs the capacity scenario against t (one edge: t.URL is the edge itself).
func RunCapacity(ctx context.Context, t *Target, cfg CapacityConfig) (*CapacityFigures, error) {
	if cfg.WorkerBin == "" {
		return nil, errors.New("loadtest: capacity needs CapacityConfig.WorkerBin for its workers")
	}
	team, err := t.team(cfg.Team)
	if err != nil {
		return nil, err
	}
	cfg.Team = team
	if cfg.Steps == nil {
		cfg.Steps = []int{2000, 4000, 6000, 8000, 10000}
	}
	if cfg.Rates == nil {
		cfg.Rates = []float64{1, 2, 5, 10, 20}
	}
	cfg.PerWorker = cmp.Or(cfg.PerWorker, 5000)
	cfg.StepFor = cmp.Or(cfg.StepFor, 10*time.Second)
	cfg.Probers = cmp.Or(cfg.Probers, 20)
	cfg.ProbeEvery = cmp.Or(cfg.ProbeEvery, 100*time.Millisecond)
	cfg.QuerySessions = cmp.Or(cfg.QuerySessions, 32)
	cfg.WorkerNice = cmp.Or(cfg.WorkerNice, 10)
	w, err := loadQueryWorld(ctx, t, cfg.Team)
	if err != nil {
		return nil, err
	}
	most := cfg.Steps[len(cfg.Steps)-1]
	if len(w.users) < most+max(cfg.Probers, cfg.QuerySessions) {
		return nil, fmt.Errorf("loadtest: team %s has %d active users for %d connections and %d probers", cfg.Team, len(w.users), most, cfg.Probers)
	}
	probers, err := dialSessions(ctx, t, cfg.Team, w.users[most:most+cfg.Probers], 16)
	defer closeSessions(probers)
	if err != nil {
		return nil, err
	}
	r := &capRun{cfg: cfg, t: t, w: w, pr: startProbers(ctx, probers, cfg.ProbeEvery)}
	defer r.pr.stop()
	defer r.stopWorkers()
	r.phase.Store("baseline")
	stopProgress := Progress(cfg.Progress, 2*time.Second, func() string { return "capacity: " + r.phase.Load().(string) })
	defer stopProgress()

	f := &CapacityFigures{Team: cfg.Team}
	if err := sleep.For(ctx, 3*time.Second); err != nil { // the team's indexes built, the probers settled
		return nil, err
	}
	if f.BaselineRSS, _, _, err = r.sample(ctx); err != nil {
		return nil, err
	}
	if err := r.idle(ctx, f); err != nil {
		return nil, err
	}
	if err := r.active(ctx, f); err != nil {
		return nil, err
	}
	if err := r.queries(ctx, f, probers); err != nil {
		return nil, err
	}
	f.Bend = bendOf(f.Steps)
	return f, nil
}

// idle ramps the connections the workers hold through the steps, measuring each.
func (r *capRun) idle(ctx context.Context, f *CapacityFigures) error {
	have := 0
	for _, n := range r.cfg.Steps {
		r.phase.Store(fmt.Sprintf("idle, connecting to %d", n))
		for have < n {
			k := min(n-have, r.cfg.PerWorker) // a worker per step's increment, at most PerWorker each
			plan := WorkerPlan{DialRate: 1000}
			for _, u := range r.w.users[have : have+k] {
				tok, err := r.t.Token(r.cfg.Team, u)
				if err != nil {
					return err
				}
				plan.Clients = append(plan.Clients, WorkerClient{Team: r.cfg.Team, User: u, Token: tok, URL: r.t.WSURL()})
			}
			wk, err := startWorker(r.cfg.WorkerBin, plan, r.cfg.WorkerNice, false, r.cfg.Stderr)
			if wk != nil {
				r.workers = append(r.workers, wk)
			}
			if err != nil {
				return err
			}
			have += k
		}
		deadline := time.Now().Add(2 * time.Minute)
		for r.held() < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("loadtest: capacity: %d of %d connections up after 2 minutes", r.held(), n)
			}
			if err := sleep.For(ctx, 250*time.Millisecond); err != nil {
				return err
			}
		}
		if err := sleep.For(ctx, 3*time.Second); err != nil { // settle
			return err
		}
		st, err := r.measure(ctx, r.cfg.StepFor/2, 0, nil)
		if err != nil {
			return err
		}
		st.Phase, st.Connections = "idle", n
		st.BytesPerConn = (st.RSSBytes - f.BaselineRSS) / float64(n)
		f.Steps = append(f.Steps, st)
	}
	f.BytesPerConn = bytesPerConn(f.Steps)
	return nil
}

// active publishes team-wide events at each rate (each goes to every connection), lets what
// is queued drain between steps, and stops raising the rate once the edge delivers less than
// 90% of what is offered: past that, a step measures a backlog, not a rate.
func (r *capRun) active(ctx context.Context, f *CapacityFigures) error {
	for _, rate := range r.cfg.Rates {
		conns := r.held()
		r.phase.Store(fmt.Sprintf("active, %.0f events/s to %d connections", rate, conns))
		var published, skipped int64
		st, err := r.measure(ctx, r.cfg.StepFor, time.Second, func(ctx context.Context) error {
			var pubErr atomic.Pointer[error]
			published, skipped = openLoop(ctx, rate, r.cfg.StepFor, 1024, func(ctx context.Context, i int, _ time.Time) {
				if err := postTimed(ctx, r.t, r.cfg.Team, r.w.users[i%len(r.w.users)]); err != nil {
					pubErr.CompareAndSwap(nil, &err)
				}
			})
			if e := pubErr.Load(); e != nil {
				return *e
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.Phase, st.Connections, st.EventsPerS, st.EventsSkipped = "active", conns, rate, skipped
		offered := float64(published) * float64(conns+len(r.pr.sessions))
		st.Saturated = st.Deliveries < 0.9*offered
		f.Steps = append(f.Steps, st)
		r.phase.Store("draining")
		if err := r.drain(ctx); err != nil {
			return err
		}
		if st.Saturated {
			break
		}
	}
	return nil
}

// queries has sessions ask back to back; the edge's CPU says what a query costs.
func (r *capRun) queries(ctx context.Context, f *CapacityFigures, probers []*client.Client) error {
	r.phase.Store("queries, back to back")
	qs := probers[:min(len(probers), r.cfg.QuerySessions)]
	most := r.cfg.Steps[len(r.cfg.Steps)-1]
	if extra := r.cfg.QuerySessions - len(qs); extra > 0 {
		more, err := dialSessions(ctx, r.t, r.cfg.Team, r.w.users[most+r.cfg.Probers:most+r.cfg.Probers+extra], 16)
		defer closeSessions(more)
		if err != nil {
			return err
		}
		qs = append(qs[:len(qs):len(qs)], more...)
	}
	var answered, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	st, err := r.measure(ctx, r.cfg.StepFor, 0, func(ctx context.Context) error {
		qctx, cancel := context.WithTimeout(ctx, r.cfg.StepFor)
		defer cancel()
		var wg sync.WaitGroup
		for i, c := range qs {
			wg.Go(func() { queryLoop(qctx, c, r.w, uint64(i), &answered, &failed, &firstErr) })
		}
		wg.Wait()
		return nil
	})
	if err != nil {
		return err
	}
	st.Phase, st.Connections = "query", r.held()
	if n, bad := answered.Load(), failed.Load(); bad > n/10 {
		return fmt.Errorf("loadtest: capacity: %d of %d queries failed (first: %v)", bad, n+bad, *firstErr.Load())
	}
	st.QueryErrors = failed.Load()
	st.QueriesPerS = float64(answered.Load()) / st.Seconds
	if st.Cores > 0 {
		st.QueriesPerCoreS = st.QueriesPerS / st.Cores
	}
	f.Steps = append(f.Steps, st)
	return nil
}

func (r *capRun) held() (n int) {
	for _, wk := range r.workers {
		wk.mu.Lock()
		n += wk.status.Up
		wk.mu.Unlock()
	}
	return n
}

// received is the events the clients (the workers' and the probers) have received so far: the
// deliveries, counted where they arrive (the edge's own counter counts frames queued, which
// runs ahead of the sockets when they are the bottleneck). A worker reports every 250 ms.
func (r *capRun) received() float64 {
	n := r.pr.events.Load()
	for _, wk := range r.workers {
		wk.mu.Lock()
		n += wk.status.Events
		wk.mu.Unlock()
	}
	return float64(n)
}

// awaitReports waits (up to 5 s) until every worker has reported since at, so that received
// counts what arrived up to then: a worker writes its status every 250 ms, later on a busy
// machine.
func (r *capRun) awaitReports(ctx context.Context, at time.Time) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		fresh := true
		for _, wk := range r.workers {
			wk.mu.Lock()
			fresh = fresh && wk.status.At > at.UnixMilli()
			wk.mu.Unlock()
		}
		if fresh || sleep.For(ctx, 50*time.Millisecond) != nil {
			return
		}
	}
}

func (r *capRun) stopWorkers() {
	for _, wk := range r.workers {
		wk.stdin.Close()
		wk.Kill()
	}
}

// sample reads the server's RSS and CPU seconds, and the sessions the edge has closed as slow
// consumers, so far.
func (r *capRun) sample(ctx context.Context) (rss, cpu, slow float64, err error) {
	m, err := r.t.Metrics(ctx, "process_resident_memory_bytes", "process_cpu_seconds_total", "weft_edge_slow_consumer_closes_total")
	return m["process_resident_memory_bytes"], m["process_cpu_seconds_total"], m["weft_edge_slow_consumer_closes_total"], err
}

// clientCPU is the CPU time the worker processes have used.
func (r *capRun) clientCPU() time.Duration {
	var sum time.Duration
	for _, wk := range r.workers {
		if u, s, err := ProcessCPU(wk.PID()); err == nil {
			sum += u + s
		}
	}
	return sum
}

// drain waits until the clients stop receiving (two reads a second apart agree, each worker
// having reported in between), up to a minute: the next step must not measure this one's
// backlog.
func (r *capRun) drain(ctx context.Context) error {
	last := r.received()
	for range 60 {
		if err := sleep.For(ctx, time.Second); err != nil {
			return err
		}
		now := r.received()
		if now == last {
			return nil
		}
		last = now
	}
	return errors.New("loadtest: capacity: the clients were still receiving a minute after the step")
}

// measure runs load (nil: none, wait d) while the probers measure, then waits tail (for the
// last events to arrive), and reads over the whole of it the edge's RSS, cores and the
// deliveries, and the workers' cores.
func (r *capRun) measure(ctx context.Context, d, tail time.Duration, load func(context.Context) error) (*CapacityStep, error) {
	_, cpu0, slow0, err := r.sample(ctx)
	if err != nil {
		return nil, err
	}
	client0, got0 := r.clientCPU(), r.received()
	probe, deliver := r.pr.reset()
	start := time.Now()
	if load == nil {
		err = sleep.For(ctx, d)
	} else if err = load(ctx); err == nil {
		err = sleep.For(ctx, tail)
	}
	if err != nil {
		return nil, err
	}
	wall := time.Since(start)
	rss, cpu1, slow1, err := r.sample(ctx)
	if err != nil {
		return nil, err
	}
	r.awaitReports(ctx, start.Add(wall))
	st := &CapacityStep{Seconds: wall.Seconds(), RSSBytes: rss, Cores: (cpu1 - cpu0) / wall.Seconds(), Probe: probe.Dist(),
		Deliver: deliver.Dist(), ClientCores: (r.clientCPU() - client0).Seconds() / wall.Seconds(), SlowConsumers: slow1 - slow0}
	if got := r.received() - got0; got > 0 {
		st.Deliveries = got
		st.DeliveriesPerS = got / wall.Seconds()
		st.CPUPer1000MS = (cpu1 - cpu0) * 1000 / (got / 1000)
	}
	return st, nil
}

// queryLoop asks the query mix back to back until ctx ends. A failure is counted; one that
// says when to retry (rate_limited, overloaded) is waited out, so a refusing target does not
// turn the loop into a spin.
func queryLoop(ctx context.Context, c *client.Client, w *queryWorld, seed uint64, answered, failed *atomic.Int64,
	firstErr *atomic.Pointer[error]) {
	r := rand.New(rand.NewPCG(seed, 0xc0de))
	for ctx.Err() == nil {
		var err error
		switch r.IntN(3) {
		case 0:
			_, err = c.UsersInfo(ctx, w.users[r.IntN(len(w.users))])
		case 1:
			_, err = c.ChannelsMembers(ctx, w.channels[r.IntN(len(w.channels))], "", 100)
		default:
			_, err = c.UsersChannels(ctx, w.users[r.IntN(len(w.users))], "", 100)
		}
		switch {
		case err == nil:
			answered.Add(1)
		case ctx.Err() != nil:
			return
		default:
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			var we *client.Error
			if errors.As(err, &we) && we.RetryAfterMS > 0 {
				sleep.For(ctx, time.Duration(we.RetryAfterMS)*time.Millisecond)
			}
		}
	}
}

// probers are sessions that send users.info on a ticker and time the fanout events they get.
type probers struct {
	sessions       []*client.Client
	events         atomic.Int64 // received
	mu             sync.Mutex
	probe, deliver *Hist
	stop           func()
}

func startProbers(ctx context.Context, cs []*client.Client, every time.Duration) *probers {
	p := &probers{sessions: cs, probe: NewHist(), deliver: NewHist()}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			self := c.Hello().User
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-c.Events():
					if !ok { // the client stopped (its error says why; the run goes on without it)
						return
					}
					at := time.Now()
					p.events.Add(1)
					if pub, ok := publishedAt(ev); ok {
						p.current(false).Record(at.Sub(pub))
					}
				case <-t.C:
					start := time.Now()
					if _, err := c.UsersInfo(ctx, self); err == nil {
						p.current(true).Record(time.Since(start))
					}
				}
			}
		})
	}
	p.stop = func() { cancel(); wg.Wait() }
	return p
}

// current is the histogram a probe (or a delivery) goes to now.
func (p *probers) current(probe bool) *Hist {
	p.mu.Lock()
	defer p.mu.Unlock()
	if probe {
		return p.probe
	}
	return p.deliver
}

// reset starts new histograms and returns them: they fill until the next reset.
func (p *probers) reset() (probe, deliver *Hist) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probe, p.deliver = NewHist(), NewHist()
	return p.probe, p.deliver
}
