package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// StormConfig is the reconnect storm of the seed talk, scaled to one machine: a cluster of
// processes, Clients real clients in Workers processes, one edge SIGKILLed.
type StormConfig struct {
	Bin              string  // the weft binary; required
	Clients, Workers int     // defaults 15,000 and 4
	Edges, Proxies   int     // defaults 3 and 2
	Size             string  // default "small"
	Rate             float64 // live activity, events/s; default 20
	// Protected runs the cluster with admission control and pacing on (a memory budget on the
	// edges, connection pacers on edges and proxies); off, every limit is lifted.
	Protected bool
	// MemoryBudget of each edge when protected; default "1GiB".
	MemoryBudget string
	// Steady is how long the cluster runs before the kill; Observe bounds the wait for every
	// client to be back after it. Defaults 10s and 90s.
	Steady, Observe time.Duration
	// EdgeArgs are extra flags for every edge (e.g. --debug-addr 127.0.0.1:0 to profile).
	EdgeArgs []string
	Stderr   io.Writer
	Log      func(format string, args ...any) // progress; nil: silent
}

// StormFigures is what a storm measured.
type StormFigures struct {
	Protected bool   `json:"protected"`
	Clients   int    `json:"clients"`
	Victim    string `json:"victim"`
	// Disturbed clients were on the killed edge.
	Disturbed int `json:"disturbed"`
	// BackAfter: time from the kill until that share of the disturbed clients had a new
	// connection that resumed ("" when they never all came back).
	BackAfter map[string]string `json:"back_after"`
	Back      int               `json:"back"`        // disturbed clients back and resumed
	NotResume int               `json:"not_resumed"` // back, but told to boot again
	Refusals  map[string]int64  `json:"refusals"`
	PeakRSS   map[string]int64  `json:"peak_rss_bytes"` // per edge
	Crashed   []string          `json:"crashed"`
	// Lost counts marker events (team-wide user_change published after every client was up)
	// a client never received; Duplicates counts events a client was sent twice.
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	// Undisturbed p50/p99 of users.info from clients never disconnected, during the minute
	// after the kill.
	ProbeP50us int64 `json:"probe_p50_us,omitempty"`
	ProbeP99us int64 `json:"probe_p99_us,omitempty"`
	Probes     int   `json:"probes"`
	// Curve is the share of disturbed clients back and resumed, every 250ms after the kill.
	Curve []float64 `json:"curve"`
}

type stormWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	status WorkerStatus
	final  *WorkerFinal
	done   chan struct{}
}

// RunStorm runs one storm and returns its figures.
func RunStorm(ctx context.Context, cfg StormConfig) (*StormFigures, error) {
	if cfg.Bin == "" {
		return nil, errors.New("loadtest: StormConfig.Bin is required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Clients, 15000)
	def(&cfg.Workers, 4)
	def(&cfg.Edges, 3)
	def(&cfg.Proxies, 2)
	if cfg.Size == "" {
		cfg.Size = "small"
	}
	if cfg.Rate == 0 {
		cfg.Rate = 20
	}
	if cfg.MemoryBudget == "" {
		cfg.MemoryBudget = "1GiB"
	}
	if cfg.Steady <= 0 {
		cfg.Steady = 10 * time.Second
	}
	if cfg.Observe <= 0 {
		cfg.Observe = 90 * time.Second
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ccfg := ClusterConfig{Bin: cfg.Bin, Edges: cfg.Edges, Proxies: cfg.Proxies, Size: cfg.Size, Rate: cfg.Rate, Stderr: cfg.Stderr}
	if cfg.Protected {
		ccfg.EdgeArgs = []string{"--memory-budget", cfg.MemoryBudget}
	} else {
		ccfg.EdgeArgs = []string{"--connect-rate", "-1", "--team-connect-rate", "-1", "--request-rate", "-1"}
		ccfg.ProxyArgs = []string{"--connect-rate", "-1", "--edge-rate", "-1"}
	}
	ccfg.EdgeArgs = append(ccfg.EdgeArgs, cfg.EdgeArgs...)
	cl, err := StartCluster(ctx, ccfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	logf("cluster up: origin, %d edges, %d proxies", len(cl.Edges), len(cl.Proxies))

	plan, err := stormClients(ctx, cl, cfg)
	if err != nil {
		return nil, err
	}
	workers, err := startWorkers(cfg, plan)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, w := range workers {
			w.cmd.Process.Kill()
			<-w.done
		}
	}()
	up := func() (n int, nodes map[string]int) {
		nodes = map[string]int{}
		for _, w := range workers {
			w.mu.Lock()
			n += w.status.Up
			for k, v := range w.status.Nodes {
				nodes[k] += v
			}
			w.mu.Unlock()
		}
		return n, nodes
	}
	deadline := time.Now().Add(time.Duration(cfg.Clients/200+60) * time.Second)
	for n, _ := up(); n < cfg.Clients; n, _ = up() {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("loadtest: only %d of %d clients connected", n, cfg.Clients)
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
	_, nodes := up()
	logf("%d clients up: %v", cfg.Clients, nodes)

	// Markers: a team-wide event per team every 5 seconds from now to the end.
	mctx, stopMarkers := context.WithCancel(ctx)
	markers, markersDone := postMarkers(mctx, cl, teamsOf(plan))
	if err := sleepCtx(ctx, cfg.Steady); err != nil {
		stopMarkers()
		return nil, err
	}
	fig := &StormFigures{Protected: cfg.Protected, Clients: cfg.Clients, PeakRSS: map[string]int64{}}
	for n, k := range nodes {
		if k > nodes[fig.Victim] || fig.Victim == "" {
			fig.Victim = n
		}
	}
	var victim *Proc
	for _, e := range cl.Edges {
		if e.Name == fig.Victim {
			victim = e
		}
	}
	rssDone := make(chan struct{})
	rssStop := make(chan struct{})
	go func() { // peak RSS and crashes of the edges, 4 times a second
		defer close(rssDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			for _, e := range cl.Edges {
				if b, err := procStatusBytes(e.PID(), "VmRSS"); err == nil && b > fig.PeakRSS[e.Name] {
					fig.PeakRSS[e.Name] = b
				}
			}
			select {
			case <-rssStop:
				return
			case <-t.C:
			}
		}
	}()
	killAt := time.Now()
	victim.Kill()
	logf("killed %s (%d clients) at %s", fig.Victim, nodes[fig.Victim], killAt.Format(time.TimeOnly))
	// Everyone is back when every client is up and none is on the victim, by statuses written
	// after the kill (a client that has not noticed the loss yet still counts as up there).
	obsEnd := killAt.Add(cfg.Observe)
	for time.Now().Before(obsEnd) {
		n, nodes := up()
		fresh := true
		for _, w := range workers {
			w.mu.Lock()
			fresh = fresh && w.status.At > killAt.Add(time.Second).UnixMilli()
			w.mu.Unlock()
		}
		if fresh && n == cfg.Clients && nodes[fig.Victim] == 0 {
			break
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			break
		}
	}
	n, _ := up()
	logf("%d of %d clients up %v after the kill", n, cfg.Clients, time.Since(killAt).Round(time.Millisecond))
	stopMarkers()
	<-markersDone
	sleepCtx(ctx, 3*time.Second) // the last markers reach everyone before the workers stop
	close(rssStop)
	<-rssDone
	for _, e := range cl.Edges {
		select {
		case <-e.Exited():
			if e != victim {
				fig.Crashed = append(fig.Crashed, e.Name)
			}
		default:
		}
	}
	for _, w := range workers {
		fmt.Fprintln(w.stdin, "stop")
	}
	for _, w := range workers {
		select {
		case <-w.done:
		case <-time.After(60 * time.Second):
			return nil, errors.New("loadtest: a storm worker did not report")
		}
	}
	fig.summarize(workers, killAt, markers)
	if path := os.Getenv("WEFT_STORM_DUMP"); path != "" { // raw worker reports, for digging
		var all []*WorkerFinal
		for _, w := range workers {
			all = append(all, w.final)
		}
		b, _ := json.Marshal(map[string]any{"kill": killAt.UnixMilli(), "markers": markers, "workers": all})
		os.WriteFile(path, b, 0o644)
	}
	return fig, nil
}

// stormClients spreads cfg.Clients over the world's teams and users, and over the proxies.
func stormClients(ctx context.Context, cl *Cluster, cfg StormConfig) ([]WorkerClient, error) {
	teams, err := worldTeams(cfg.Size)
	if err != nil {
		return nil, err
	}
	per := (cfg.Clients + len(teams) - 1) / len(teams)
	var out []WorkerClient
	for _, team := range teams {
		users, err := TeamUsers(ctx, cl.HTTP, cl.Origin.URL, OriginToken, team)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, u := range users {
			if n == per || len(out) == cfg.Clients {
				break
			}
			if u.Deleted {
				continue
			}
			tok, err := cl.Token(team, u.ID)
			if err != nil {
				return nil, err
			}
			p := cl.Proxies[len(out)%len(cl.Proxies)]
			out = append(out, WorkerClient{Team: team, User: u.ID, Token: tok, URL: "ws" + strings.TrimPrefix(p.URL, "http") + "/ws"})
			n++
		}
	}
	if len(out) < cfg.Clients {
		return nil, fmt.Errorf("loadtest: the %s world has users for %d clients, not %d", cfg.Size, len(out), cfg.Clients)
	}
	return out, nil
}

func teamsOf(plan []WorkerClient) []string {
	var teams []string
	for _, c := range plan {
		if len(teams) == 0 || teams[len(teams)-1] != c.Team {
			teams = append(teams, c.Team)
		}
	}
	return teams
}

func startWorkers(cfg StormConfig, plan []WorkerClient) ([]*stormWorker, error) {
	var workers []*stormWorker
	for i := range cfg.Workers {
		var mine []WorkerClient
		for j := i; j < len(plan); j += cfg.Workers {
			mine = append(mine, plan[j])
		}
		w := &stormWorker{cmd: exec.Command(cfg.Bin, "loadtest", "storm-worker"), done: make(chan struct{})}
		w.cmd.Env = withoutWeftEnv(os.Environ())
		w.cmd.Stderr = cfg.Stderr
		setChildAttrs(w.cmd)
		var err error
		if w.stdin, err = w.cmd.StdinPipe(); err != nil {
			return nil, err
		}
		stdout, err := w.cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := w.cmd.Start(); err != nil {
			return nil, err
		}
		go w.read(stdout)
		if err := json.NewEncoder(w.stdin).Encode(WorkerPlan{Clients: mine, DialRate: 400,
			ProbeEvery: time.Second, ProbeShare: 0.05}); err != nil {
			return nil, err
		}
		workers = append(workers, w)
	}
	return workers, nil
}

func (w *stormWorker) read(r io.Reader) {
	defer close(w.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		line := sc.Bytes()
		if strings.HasPrefix(string(line), `{"final"`) {
			var f WorkerFinal
			if json.Unmarshal(line, &f) == nil {
				w.mu.Lock()
				w.final = &f
				w.mu.Unlock()
			}
			continue
		}
		var st WorkerStatus
		if json.Unmarshal(line, &st) == nil {
			w.mu.Lock()
			w.status = st
			w.mu.Unlock()
		}
	}
	w.cmd.Wait()
}

// postMarkers publishes a user_change on every team every 5 seconds until ctx ends; the returned
// map (team → seqs) is complete when done is closed. A marker goes to every client of its team:
// 100 teams every second made 15,000 deliveries a second at 15,000 clients, a load of its own
// on top of the storm; every 5 s is 3,000, near the live activity's own.
func postMarkers(ctx context.Context, cl *Cluster, teams []string) (map[string][]int64, <-chan struct{}) {
	out := map[string][]int64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		users := map[string]string{}
		for _, t := range teams {
			us, err := TeamUsers(ctx, cl.HTTP, cl.Origin.URL, OriginToken, t)
			if err != nil || len(us) == 0 {
				continue
			}
			users[t] = us[len(us)-1].ID
		}
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, t := range teams {
				title := fmt.Sprintf("marker %d", i)
				r, err := PostEvents(ctx, cl.HTTP, cl.Origin.URL, OriginToken, t,
					EventsRequest{Type: "user_change", User: users[t], Title: &title})
				if err != nil {
					return
				}
				out[t] = append(out[t], r.FirstSeq)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out, done
}

// summarize computes the figures from the workers' finals.
func (f *StormFigures) summarize(workers []*stormWorker, killAt time.Time, markers map[string][]int64) {
	kill := killAt.UnixMilli()
	f.Refusals = map[string]int64{}
	var backs []time.Duration
	var probes []int64
	for _, w := range workers {
		w.mu.Lock()
		for k, v := range w.status.Refusals {
			f.Refusals[k] += v
		}
		fin := w.final
		w.mu.Unlock()
		if fin == nil {
			continue
		}
		for _, p := range fin.Probes {
			if p[0] >= kill && p[0] < kill+60_000 {
				probes = append(probes, p[1])
			}
		}
		for _, c := range fin.Clients {
			f.Duplicates += c.Duplicates
			got := map[int64]bool{}
			for _, s := range c.Markers {
				got[s] = true
			}
			for _, s := range markers[c.Team] {
				if !got[s] {
					f.Lost++
				}
			}
			if c.FirstNode != f.Victim {
				continue
			}
			f.Disturbed++
			for i, at := range c.Up {
				if at > kill {
					if c.Resumed[i] {
						f.Back++
						backs = append(backs, time.Duration(at-kill)*time.Millisecond)
					} else {
						f.NotResume++
					}
					break
				}
			}
		}
	}
	slices.Sort(backs)
	f.BackAfter = map[string]string{}
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		need := int(math.Ceil(q * float64(f.Disturbed)))
		key := fmt.Sprintf("p%g", q*100)
		if need > 0 && need <= len(backs) {
			f.BackAfter[key] = backs[need-1].Round(10 * time.Millisecond).String()
		} else {
			f.BackAfter[key] = "never"
		}
	}
	for t := time.Duration(0); t <= 90*time.Second; t += 250 * time.Millisecond {
		n, _ := slices.BinarySearch(backs, t+1)
		f.Curve = append(f.Curve, float64(n)/float64(max(f.Disturbed, 1)))
	}
	f.Probes = len(probes)
	if len(probes) > 0 {
		slices.Sort(probes)
		f.ProbeP50us = probes[len(probes)/2]
		f.ProbeP99us = probes[int(0.99*float64(len(probes)-1))]
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Summary is the figures in a few lines.
func (f *StormFigures) Summary() string {
	var b strings.Builder
	mode := "without admission control or pacing"
	if f.Protected {
		mode = "with admission control and pacing"
	}
	fmt.Fprintf(&b, "storm %s: %d clients, killed %s with %d of them\n", mode, f.Clients, f.Victim, f.Disturbed)
	fmt.Fprintf(&b, "  back and resumed: %d (not resumed %d); after the kill: 50%% %s, 90%% %s, 99%% %s, 100%% %s\n",
		f.Back, f.NotResume, f.BackAfter["p50"], f.BackAfter["p90"], f.BackAfter["p99"], f.BackAfter["p100"])
	fmt.Fprintf(&b, "  refusals: %v\n  peak RSS: ", f.Refusals)
	for _, name := range slices.Sorted(maps.Keys(f.PeakRSS)) {
		fmt.Fprintf(&b, "%s %d MiB  ", name, f.PeakRSS[name]>>20)
	}
	fmt.Fprintf(&b, "\n  crashed: %v; events lost %d, duplicated %d\n", f.Crashed, f.Lost, f.Duplicates)
	fmt.Fprintf(&b, "  users.info from undisturbed clients in the minute after the kill: %d probes, p50 %d µs, p99 %d µs\n",
		f.Probes, f.ProbeP50us, f.ProbeP99us)
	return b.String()
}
