package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/client"
)

// The capacity scenario: on one edge, ramp idle connections (real clients in worker processes,
// so the edge process is the only one holding the sessions' server side), then make them
// active with team-wide events at rising rates, then ask it queries as fast as it answers.
// It reports memory per connection, CPU per 1,000 deliveries, queries per core, and where
// latency starts to bend, measured by a few probe sessions in this process throughout.

// CapacityConfig configures RunCapacity. Zero values are the defaults given.
type CapacityConfig struct {
	// Bin is the weft binary the worker processes run (`weft loadtest storm-worker`).
	Bin  string
	Team string
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

// CapacityStep is one point of the ramp.
type CapacityStep struct {
	Phase       string  `json:"phase"` // "idle", "active", "query"
	Connections int     `json:"connections"`
	EventsPerS  float64 `json:"events_per_s,omitempty"`
	// EventsSkipped were not published: 1,024 publishes were already waiting on the origin.
	EventsSkipped int64   `json:"events_skipped,omitempty"`
	RSSBytes      float64 `json:"rss_bytes"`
	// BytesPerConn is the RSS over the baseline (the team loaded, the probers connected),
	// divided by the connections the workers hold.
	BytesPerConn float64 `json:"bytes_per_conn,omitempty"`
	// Cores the edge process used during the step.
	Cores float64 `json:"cores"`
	// Deliveries per second during the step (weft_edge_events_out_total) and the edge's
	// CPU per 1,000 of them.
	DeliveriesPerS  float64 `json:"deliveries_per_s,omitempty"`
	CPUPer1000MS    float64 `json:"cpu_ms_per_1000_deliveries,omitempty"`
	QueriesPerS     float64 `json:"queries_per_s,omitempty"`
	QueriesPerCoreS float64 `json:"queries_per_core_s,omitempty"`
	// Probe is the probers' users.info round trips; Deliver their events' publish-to-deliver.
	Probe   Dist `json:"probe"`
	Deliver Dist `json:"deliver,omitempty"`
}

// CapacityFigures is what RunCapacity measured.
type CapacityFigures struct {
	Team        string          `json:"team"`
	BaselineRSS float64         `json:"baseline_rss_bytes"`
	Steps       []*CapacityStep `json:"steps"`
	// BytesPerConn is what one more idle connection costs: the slope of RSS over the idle
	// steps.
	BytesPerConn float64 `json:"bytes_per_idle_conn"`
	// Bend is where latency starts to bend (see bendOf). Empty when it did not.
	Bend string `json:"bend"`
}

// RunCapacity runs the capacity scenario against t (one edge: t.URL is the edge itself).
func RunCapacity(ctx context.Context, t *Target, cfg CapacityConfig) (*CapacityFigures, error) {
	if cfg.Bin == "" {
		return nil, errors.New("loadtest: capacity needs the weft binary for its workers")
	}
	if cfg.Team == "" {
		team, err := t.FirstTeam()
		if err != nil {
			return nil, err
		}
		cfg.Team = team
	}
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
	if len(w.users) < most+cfg.Probers {
		return nil, fmt.Errorf("loadtest: team %s has %d active users for %d connections and %d probers", cfg.Team, len(w.users), most, cfg.Probers)
	}
	probers, err := dialSessions(ctx, t, cfg.Team, w.users[most:most+cfg.Probers], 16)
	defer closeSessions(probers)
	if err != nil {
		return nil, err
	}
	pr := startProbers(ctx, probers, cfg.ProbeEvery)
	defer pr.stop()

	f := &CapacityFigures{Team: cfg.Team}
	var phase atomic.Value
	phase.Store("baseline")
	stopProgress := Progress(cfg.Progress, 2*time.Second, func() string { return "capacity: " + phase.Load().(string) })
	defer stopProgress()
	sample := func() (rss, cpu, out float64, err error) {
		m, err := t.Metrics(ctx, "process_resident_memory_bytes", "process_cpu_seconds_total", "weft_edge_events_out_total")
		return m["process_resident_memory_bytes"], m["process_cpu_seconds_total"], m["weft_edge_events_out_total"], err
	}
	settle := func() error { return sleepCtx(ctx, 3*time.Second) }
	if err := settle(); err != nil {
		return nil, err
	}
	if f.BaselineRSS, _, _, err = sample(); err != nil {
		return nil, err
	}

	// Idle: workers hold the connections, the probers measure.
	var workers []*stormWorker
	defer func() {
		for _, wk := range workers {
			wk.stdin.Close()
			wk.cmd.Process.Kill()
			<-wk.done
		}
	}()
	held := func() (n int) {
		for _, wk := range workers {
			wk.mu.Lock()
			n += wk.status.Up
			wk.mu.Unlock()
		}
		return n
	}
	have := 0
	for _, n := range cfg.Steps {
		phase.Store(fmt.Sprintf("idle, connecting to %d", n))
		for have < n {
			k := min(n-have, cfg.PerWorker) // a worker per step's increment, at most PerWorker each
			plan := WorkerPlan{DialRate: 1000}
			for _, u := range w.users[have : have+k] {
				tok, err := t.Token(cfg.Team, u)
				if err != nil {
					return nil, err
				}
				plan.Clients = append(plan.Clients, WorkerClient{Team: cfg.Team, User: u, Token: tok, URL: t.WSURL()})
			}
			wk, err := startWorker(cfg.Bin, plan, cfg.WorkerNice, cfg.Stderr)
			if wk != nil {
				workers = append(workers, wk)
			}
			if err != nil {
				return nil, err
			}
			have += k
		}
		deadline := time.Now().Add(2 * time.Minute)
		for held() < n {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("loadtest: capacity: %d of %d connections up after 2 minutes", held(), n)
			}
			if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
				return nil, err
			}
		}
		if err := settle(); err != nil {
			return nil, err
		}
		st, err := measureStep(ctx, pr, sample, cfg.StepFor/2, nil)
		if err != nil {
			return nil, err
		}
		st.Phase, st.Connections = "idle", n
		st.BytesPerConn = (st.RSSBytes - f.BaselineRSS) / float64(n)
		f.Steps = append(f.Steps, st)
	}
	f.BytesPerConn = bytesPerConn(f.Steps)

	// Active: team-wide events at each rate; each goes to every connection.
	for _, rate := range cfg.Rates {
		phase.Store(fmt.Sprintf("active, %.0f events/s to %d connections", rate, most))
		var skipped int64
		st, err := measureStep(ctx, pr, sample, cfg.StepFor, func(ctx context.Context) error {
			var pubErr atomic.Pointer[error]
			_, skipped = openLoop(ctx, rate, cfg.StepFor, 1024, func(ctx context.Context, i int, _ time.Time) {
				title := "fanout " + strconv.FormatInt(time.Now().UnixNano(), 10)
				if _, err := PostEvents(ctx, t.HTTP, t.OriginURL, t.OriginToken, cfg.Team,
					EventsRequest{Type: "user_change", User: w.users[i%len(w.users)], Title: &title}); err != nil {
					pubErr.CompareAndSwap(nil, &err)
				}
			})
			if e := pubErr.Load(); e != nil {
				return *e
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		st.Phase, st.Connections, st.EventsPerS, st.EventsSkipped = "active", held(), rate, skipped
		f.Steps = append(f.Steps, st)
	}

	// Queries: sessions ask back to back; the edge's CPU says what a query costs.
	phase.Store("queries, back to back")
	qs := probers[:min(len(probers), cfg.QuerySessions)]
	if extra := cfg.QuerySessions - len(qs); extra > 0 {
		more, err := dialSessions(ctx, t, cfg.Team, w.users[most+cfg.Probers:most+cfg.Probers+extra], 16)
		defer closeSessions(more)
		if err != nil {
			return nil, err
		}
		qs = append(qs[:len(qs):len(qs)], more...)
	}
	var answered atomic.Int64
	st, err := measureStep(ctx, pr, sample, cfg.StepFor, func(ctx context.Context) error {
		qctx, cancel := context.WithTimeout(ctx, cfg.StepFor)
		defer cancel()
		var wg sync.WaitGroup
		for i, c := range qs {
			wg.Go(func() { queryLoop(qctx, c, w, uint64(i), &answered) })
		}
		wg.Wait()
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.Phase, st.Connections = "query", held()
	st.QueriesPerS = float64(answered.Load()) / cfg.StepFor.Seconds()
	if st.Cores > 0 {
		st.QueriesPerCoreS = st.QueriesPerS / st.Cores
	}
	f.Steps = append(f.Steps, st)
	f.Bend = bendOf(f.Steps)
	return f, nil
}

// measureStep runs load (nil: none, wait d) while the probers measure, and reads the edge's
// RSS, cores and deliveries over it.
func measureStep(ctx context.Context, pr *probers, sample func() (rss, cpu, out float64, err error), d time.Duration,
	load func(context.Context) error) (*CapacityStep, error) {
	_, cpu0, out0, err := sample()
	if err != nil {
		return nil, err
	}
	probe, deliver := pr.reset()
	start := time.Now()
	if load == nil {
		err = sleepCtx(ctx, d)
	} else {
		err = load(ctx)
		sleepCtx(ctx, 500*time.Millisecond) // the last events reach everyone
	}
	if err != nil {
		return nil, err
	}
	wall := time.Since(start)
	rss, cpu1, out1, err := sample()
	if err != nil {
		return nil, err
	}
	st := &CapacityStep{RSSBytes: rss, Cores: (cpu1 - cpu0) / wall.Seconds(), Probe: probe.Dist(), Deliver: deliver.Dist()}
	if out := out1 - out0; out > 0 {
		st.DeliveriesPerS = out / wall.Seconds()
		st.CPUPer1000MS = (cpu1 - cpu0) * 1000 / (out / 1000)
	}
	return st, nil
}

// queryLoop asks the query mix back to back until ctx ends.
func queryLoop(ctx context.Context, c *client.Client, w *queryWorld, seed uint64, answered *atomic.Int64) {
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
		if err == nil {
			answered.Add(1)
		}
	}
}

// bendOf names the first idle or active step where latency bends: its users.info p99 more
// than twice the best idle step's (and 5 ms more: 1 → 2 ms is noise, not a bend), or, for an
// active step, its publish-to-deliver p99 likewise against the first active step's. The
// query step is left out: back to back is saturation by design.
func bendOf(steps []*CapacityStep) string {
	probe0, deliver0 := math.Inf(1), 0.0
	for _, s := range steps {
		if s.Phase == "idle" && s.Probe.N > 0 {
			probe0 = min(probe0, s.Probe.P99)
		}
	}
	bent := func(v, ref float64) bool { return ref > 0 && !math.IsInf(ref, 1) && v > 2*ref && v > ref+5 }
	for _, s := range steps {
		if deliver0 == 0 && s.Phase == "active" {
			deliver0 = s.Deliver.P99
		}
		what := ""
		switch {
		case s.Phase == "query":
			continue
		case bent(s.Probe.P99, probe0):
			what = fmt.Sprintf("users.info p99 %.1f ms (best idle step %.1f ms)", s.Probe.P99, probe0)
		case s.Phase == "active" && bent(s.Deliver.P99, deliver0):
			what = fmt.Sprintf("publish-to-deliver p99 %.1f ms (first active step %.1f ms)", s.Deliver.P99, deliver0)
		}
		if what != "" {
			return fmt.Sprintf("%s: %s", s.label(), what)
		}
	}
	return ""
}

// bytesPerConn is the slope of RSS over connections across the idle steps (least squares):
// what one more connection costs. The first connections partly reuse heap the team load
// freed, so RSS over the baseline divided by connections understates it; the slope does not.
func bytesPerConn(steps []*CapacityStep) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range steps {
		if s.Phase != "idle" {
			continue
		}
		x, y := float64(s.Connections), s.RSSBytes
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if n < 2 || n*sxx == sx*sx {
		return 0
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func (s *CapacityStep) label() string {
	switch s.Phase {
	case "active":
		return fmt.Sprintf("%d connections × %.0f events/s (%.0f deliveries/s)", s.Connections, s.EventsPerS, s.DeliveriesPerS)
	case "query":
		return fmt.Sprintf("%d connections, queries back to back", s.Connections)
	}
	return fmt.Sprintf("%d idle connections", s.Connections)
}

// probers are sessions that send users.info on a ticker and time the fanout events they get.
type probers struct {
	mu             sync.Mutex
	probe, deliver *Hist
	stop           func()
}

func startProbers(ctx context.Context, cs []*client.Client, every time.Duration) *probers {
	p := &probers{probe: NewHist(), deliver: NewHist()}
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
				case ev := <-c.Events():
					at := time.Now()
					if ev.User == nil {
						continue
					}
					if pub, ok := strings.CutPrefix(ev.User.Title, "fanout "); ok {
						if ns, err := strconv.ParseInt(pub, 10, 64); err == nil {
							p.current(false).Record(at.Sub(time.Unix(0, ns)))
						}
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

// CapacityReport is the capacity scenario's report.
func CapacityReport(f *CapacityFigures, workload, command string) (*Report, error) {
	r := &Report{Scenario: "capacity", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	r.Table = [][]string{{"step", "RSS", "per conn", "cores", "deliveries/s", "CPU ms per 1,000 deliveries", "queries/s", "queries/s per core", "users.info p99 (ms)", "deliver p99 (ms)"}}
	var memPts, probePts, deliverPts [][2]float64
	for _, s := range f.Steps {
		row := []string{s.label(), bytesIEC(s.RSSBytes), "", fmt.Sprintf("%.2f", s.Cores), "", "", "", "", ms(s.Probe.P99), ""}
		if s.BytesPerConn > 0 {
			row[2] = bytesIEC(s.BytesPerConn)
			memPts = append(memPts, [2]float64{float64(s.Connections), s.RSSBytes / (1 << 20)})
		}
		if s.DeliveriesPerS > 0 {
			row[4], row[5] = fmt.Sprintf("%.0f", s.DeliveriesPerS), fmt.Sprintf("%.1f", s.CPUPer1000MS)
		}
		if s.Phase == "active" {
			row[9] = ms(s.Deliver.P99)
			probePts = append(probePts, [2]float64{s.DeliveriesPerS / 1000, s.Probe.P99})
			deliverPts = append(deliverPts, [2]float64{s.DeliveriesPerS / 1000, s.Deliver.P99})
		}
		if s.QueriesPerS > 0 {
			row[6], row[7] = fmt.Sprintf("%.0f", s.QueriesPerS), fmt.Sprintf("%.0f", s.QueriesPerCoreS)
		}
		r.Table = append(r.Table, row)
	}
	for _, s := range f.Steps {
		if s.EventsSkipped > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d events not published (the origin fell behind)", s.label(), s.EventsSkipped))
		}
	}
	bend := f.Bend
	if bend == "" {
		bend = "no step's p99 passed twice the first step's"
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("memory per idle connection: %s (the slope of RSS over the idle steps)", bytesIEC(f.BytesPerConn)),
		fmt.Sprintf("baseline RSS %s (the team loaded, the probers connected); per conn = (RSS − baseline) / connections, which understates: the first connections reuse heap the team load freed", bytesIEC(f.BaselineRSS)),
		"latency bends: "+bend,
	)
	if len(memPts) > 1 {
		p, err := LinePlot("edge memory over idle connections", "idle connections", "RSS (MiB)", Series{"RSS", memPts})
		if err != nil {
			return nil, err
		}
		r.addPlot("capacity-memory.png", p)
	}
	if len(probePts) > 1 {
		p, err := LinePlot("latency over delivery load", "thousand deliveries per second", "p99 (ms)",
			Series{"users.info p99", probePts}, Series{"publish-to-deliver p99", deliverPts})
		if err != nil {
			return nil, err
		}
		r.addPlot("capacity-latency.png", p)
	}
	return r, nil
}
