package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-edge/weft/internal/sleep"
	"github.com/weft-edge/weft/origin/reference"
)

// StormConfig is the reconnect storm of the seed talk, scaled to one machine: a cluster of
// processes, Clients real clients in Workers processes, one edge SIGKILLed.
type StormConfig struct {
	Bin string // the weft binary the origin, edges and proxies run; required
	// WorkerBin is the program the client workers run, as `WorkerBin storm-worker`
	// (WorkerCommand): weft-loadtest itself, which calls RunStormWorker. Required.
	WorkerBin        string
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
	// Probers of the clients run in a process of their own and send users.info every
	// ProbeEvery: the latency of undisturbed clients, measured where the load workers' own
	// scheduling does not count. Defaults 100 and 250ms.
	Probers    int
	ProbeEvery time.Duration
	// WorkerNice is the nice value of the load workers. They stand in for 15,000 devices
	// elsewhere: on a 2-core machine shared with the servers they would otherwise take the
	// CPU the servers need, and the storm would measure the load generator. 0: as the rest.
	WorkerNice int
	// WorkerIdle runs the load workers under SCHED_IDLE instead of at WorkerNice.
	WorkerIdle bool
	// ServerProcs is the GOMAXPROCS of every edge and proxy (their --gomaxprocs), in both
	// runs; 0: Go's own, one P per core. Five servers share two cores here, as no deployment
	// would. With one P per core a server runs at most two threads of Go code: when the
	// kernel gives one of them to another process, the goroutines queued on its P wait, and
	// in a burst (the herd's first second, a GC cycle that takes a quarter of the Ps and
	// drafts allocating goroutines into assists) there is no spare P to run them. Traces
	// showed goroutines runnable for up to 68 ms in an edge's 382 ms GC mark phase, with no
	// process short of CPU over the second. With more Ps than cores the kernel shares the
	// cores among threads, and a server in a burst gets the larger share it needs.
	// results/storm-15k has the figures for 4 against Go's default.
	ServerProcs int
	// EdgeArgs are extra flags for every edge (e.g. --gc-percent 200).
	EdgeArgs []string
	// Kill is how many edges are SIGKILLed, the busiest first; default 1.
	Kill int
	// OOMLimit, when set, kills any edge whose RSS passes it (checked 4 times a second), in
	// both runs: what a container's memory limit does, and what took the seed's hosts down
	// one after the other. Give the protected run the same MemoryBudget to see admission
	// control keep an edge under it.
	OOMLimit int64
	// MetricsDir, when set, receives the /metrics of every surviving edge and proxy at the end.
	MetricsDir string
	// ProxyArgs are extra flags for every proxy (weft's).
	ProxyArgs []string
	// Front stands in front of the edges: FrontWeft (the default) or FrontNginx, the
	// baseline (ClusterConfig.Front); nginx runs with its own defaults in both storms.
	Front  string
	Stderr io.Writer
	Log    func(format string, args ...any) // progress; nil: silent
}

// stormWorker is a client worker process: its plan and "stop" go to its stdin; it reports
// its status, then its final figures, as JSON lines on its stdout.
type stormWorker struct {
	*child
	stdin  io.WriteCloser
	mu     sync.Mutex
	status WorkerStatus
	final  *WorkerFinal
}

// RunStorm runs one storm and returns its figures.
func RunStorm(ctx context.Context, cfg StormConfig) (*StormFigures, error) {
	if cfg.Bin == "" {
		return nil, errors.New("loadtest: StormConfig.Bin is required")
	}
	if cfg.WorkerBin == "" {
		return nil, errors.New("loadtest: StormConfig.WorkerBin is required")
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
	def(&cfg.Kill, 1)
	if cfg.Kill >= cfg.Edges+1 {
		return nil, fmt.Errorf("loadtest: cannot kill %d of %d edges", cfg.Kill, cfg.Edges)
	}
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
	if cfg.Probers <= 0 {
		cfg.Probers = 100
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = 250 * time.Millisecond
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ccfg := ClusterConfig{Bin: cfg.Bin, Edges: cfg.Edges, Proxies: cfg.Proxies, Size: cfg.Size, Rate: cfg.Rate, Stderr: cfg.Stderr, Front: cfg.Front}
	if cfg.Protected {
		ccfg.EdgeArgs = []string{"--memory-budget", cfg.MemoryBudget}
	} else {
		ccfg.EdgeArgs = []string{"--connect-rate", "-1", "--team-connect-rate", "-1", "--request-rate", "-1", "--surge-loads", "-1"}
		ccfg.ProxyArgs = []string{"--connect-rate", "-1", "--edge-rate", "-1", "--accept-rate", "-1"}
	}
	if cfg.ServerProcs > 0 {
		procs := []string{"--gomaxprocs", strconv.Itoa(cfg.ServerProcs)}
		ccfg.EdgeArgs = append(ccfg.EdgeArgs, procs...)
		ccfg.ProxyArgs = append(ccfg.ProxyArgs, procs...)
	}
	ccfg.EdgeArgs = append(ccfg.EdgeArgs, cfg.EdgeArgs...)
	ccfg.ProxyArgs = append(ccfg.ProxyArgs, cfg.ProxyArgs...)
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
	defer func() {
		for _, w := range workers {
			w.Kill()
		}
	}()
	if err != nil {
		return nil, err
	}
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
		if err := sleep.For(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
	_, nodes := up()
	upAt := time.Now()
	pids := map[string]int{"origin": cl.Origin.PID()}
	for _, p := range append(slices.Clone(cl.Edges), cl.Proxies...) {
		pids[p.Name] = p.PID()
		if cl.Front == FrontNginx && slices.Contains(cl.Proxies, p) { // its workers do the work
			kids, err := childPIDs(p.PID())
			if err != nil {
				return nil, err
			}
			for i, k := range kids {
				pids[fmt.Sprintf("%s-worker-%d", p.Name, i+1)] = k
			}
		}
	}
	for i, w := range workers {
		name := fmt.Sprintf("worker-%d", i+1)
		if i == len(workers)-1 {
			name = "probe"
		}
		pids[name] = w.PID()
	}
	logf("%d clients up: %v", cfg.Clients, nodes)

	// Markers: a team-wide event per team every 5 seconds from now to the end.
	mctx, stopMarkers := context.WithCancel(ctx)
	markers, markersDone := postMarkers(mctx, cl, teamsOf(plan))
	cpuUp := cpuOf(pids)
	if err := sleep.For(ctx, cfg.Steady); err != nil {
		stopMarkers()
		return nil, err
	}
	fig := &StormFigures{Protected: cfg.Protected, Front: cl.Front, Clients: cfg.Clients, PeakRSS: map[string]int64{}}
	byLoad := slices.Clone(cl.Edges)
	slices.SortStableFunc(byLoad, func(a, b *Proc) int { return nodes[b.Name] - nodes[a.Name] })
	victims := byLoad[:cfg.Kill]
	isVictim := map[string]bool{}
	var names []string
	disturbed := 0
	for _, v := range victims {
		isVictim[v.Name] = true
		names = append(names, v.Name)
		disturbed += nodes[v.Name]
	}
	fig.Victim = strings.Join(names, ",")
	rssDone := make(chan struct{})
	rssStop := make(chan struct{})
	go func() { // peak RSS and crashes of the edges, 4 times a second
		defer close(rssDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			for _, e := range cl.Edges {
				b, err := procStatusBytes(e.PID(), "VmRSS")
				if err != nil {
					continue
				}
				fig.PeakRSS[e.Name] = max(fig.PeakRSS[e.Name], b)
				if cfg.OOMLimit > 0 && b > cfg.OOMLimit && !isVictim[e.Name] && !slices.Contains(fig.OOMKilled, e.Name) {
					e.Kill()
					fig.OOMKilled = append(fig.OOMKilled, e.Name)
					logf("%s over the memory limit (RSS %d MiB): killed", e.Name, b>>20)
				}
			}
			select {
			case <-rssStop:
				return
			case <-t.C:
			}
		}
	}()
	cpu0, cpu0Wall := cpuOf(pids), time.Now()
	fig.CPUSteady = cores(cpuUp, cpu0, cpu0Wall.Sub(upAt))
	for _, v := range victims {
		delete(pids, v.Name)
	}
	killAt := time.Now()
	for _, v := range victims {
		v.Kill()
	}
	logf("killed %s (%d clients) at %s", fig.Victim, disturbed, killAt.Format(time.TimeOnly))
	// Everyone is back when every client is up and none is on the victim, by statuses written
	// after the kill (a client that has not noticed the loss yet still counts as up there).
	obsEnd := killAt.Add(cfg.Observe)
	connected := func(n int) float64 { return float64(n) / float64(cfg.Clients) }
	lastCPU, lastAt := cpu0, killAt
	for time.Now().Before(obsEnd) {
		if now := time.Now(); now.Sub(lastAt) >= time.Second { // each process's cores, second by second
			c := cpuOf(pids)
			fig.CPUBySecond = append(fig.CPUBySecond, cores(lastCPU, c, now.Sub(lastAt)))
			lastCPU, lastAt = c, now
		}
		n, nodes := up()
		for len(fig.Connected) <= int(time.Since(killAt)/(250*time.Millisecond)) { // a point every 250ms
			fig.Connected = append(fig.Connected, connected(n))
		}
		fresh := true
		for _, w := range workers {
			w.mu.Lock()
			fresh = fresh && w.status.At > killAt.Add(time.Second).UnixMilli()
			w.mu.Unlock()
		}
		onVictims := 0
		for _, v := range victims {
			onVictims += nodes[v.Name]
		}
		if fresh && n == cfg.Clients && onVictims == 0 {
			break
		}
		if err := sleep.For(ctx, 250*time.Millisecond); err != nil {
			break
		}
	}
	fig.CPU = cores(cpu0, cpuOf(pids), time.Since(killAt))
	n, _ := up()
	for len(fig.Connected) <= int(90*time.Second/(250*time.Millisecond)) { // as it ended, to the plot's edge
		fig.Connected = append(fig.Connected, connected(n))
	}
	logf("%d of %d clients up %v after the kill", n, cfg.Clients, time.Since(killAt).Round(time.Millisecond))
	if cfg.MetricsDir != "" {
		if err := scrapeMetrics(ctx, cl, cfg.MetricsDir); err != nil {
			logf("metrics: %v", err)
		}
	}
	stopMarkers()
	<-markersDone
	sleep.For(ctx, 3*time.Second) // the last markers reach everyone before the workers stop
	close(rssStop)
	<-rssDone
	for _, e := range cl.Edges {
		select {
		case <-e.Exited():
			if !isVictim[e.Name] {
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
		case <-w.Exited():
		case <-time.After(60 * time.Second):
			return nil, errors.New("loadtest: a storm worker did not report")
		}
	}
	fig.summarize(workers, upAt, killAt, markers)
	if path := os.Getenv("WEFT_STORM_DUMP"); path != "" { // raw worker reports, for digging
		path = strings.TrimSuffix(path, ".json") + map[bool]string{true: "-protected", false: "-unprotected"}[cfg.Protected] + ".json"
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
			out = append(out, WorkerClient{Team: team, User: u.ID, Token: tok, URL: cl.WSURL(p, team)})
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

// startWorkers starts cfg.Workers load workers (at cfg.WorkerNice) and one probe worker with
// cfg.Probers clients taken evenly from the plan.
func startWorkers(cfg StormConfig, plan []WorkerClient) ([]*stormWorker, error) {
	// The k-th prober is plan[k·every + k%every]: spread over the teams, and (plan entries
	// alternate over the proxies) over the proxies too, whatever every's parity.
	var probers, rest []WorkerClient
	every := max(len(plan)/cfg.Probers, 1)
	for i, c := range plan {
		if k := i / every; i == k*every+k%every && len(probers) < cfg.Probers {
			probers = append(probers, c)
		} else {
			rest = append(rest, c)
		}
	}
	var workers []*stormWorker
	start := func(p WorkerPlan, nice int, idle bool) error {
		w, err := startWorker(cfg.WorkerBin, p, nice, idle, cfg.Stderr)
		if w != nil {
			workers = append(workers, w)
		}
		return err
	}
	for i := range cfg.Workers {
		var mine []WorkerClient
		for j := i; j < len(rest); j += cfg.Workers {
			mine = append(mine, rest[j])
		}
		if err := start(WorkerPlan{Clients: mine, DialRate: 400}, cfg.WorkerNice, cfg.WorkerIdle); err != nil {
			return workers, err
		}
	}
	err := start(WorkerPlan{Clients: probers, DialRate: 400, ProbeEvery: cfg.ProbeEvery, ProbeShare: 1}, 0, false)
	return workers, err
}

// WorkerCommand is the argument a worker program (StormConfig.WorkerBin,
// CapacityConfig.WorkerBin) is started with; it must then run RunStormWorker on its standard
// input and output. The workers are clients, so they are the load generator's own process
// re-executed, never the weft binary.
const WorkerCommand = "storm-worker"

// startWorker starts a client process (`bin storm-worker`) at nice and hands it plan. A
// worker that started is returned even with an error, so that it can be stopped.
func startWorker(bin string, p WorkerPlan, nice int, idle bool, stderr io.Writer) (*stormWorker, error) {
	cmd, err := nicedCommand(nice, idle, bin, WorkerCommand)
	if err != nil {
		return nil, err
	}
	w := &stormWorker{}
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if w.child, err = startChild("storm worker", cmd, stderr, w.read); err != nil {
		return nil, err
	}
	return w, json.NewEncoder(w.stdin).Encode(p)
}

func (w *stormWorker) read(r io.Reader) {
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
}

// postMarkers publishes a user_change on every team every 5 seconds until ctx ends, one team
// after the other, evenly spread over the 5 s; the returned map (team → seqs) is complete when
// done is closed. A marker goes to every client of its team: all 100 teams at once would be
// 15,000 deliveries in one instant every 5 s, a burst that no live activity makes; spread,
// it is 3,000 a second, near the live activity's own.
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
		if len(teams) == 0 {
			return
		}
		tick := time.NewTicker(5 * time.Second / time.Duration(len(teams)))
		defer tick.Stop()
		for i := 0; ; i++ {
			t := teams[i%len(teams)]
			title := fmt.Sprintf("marker %d", i/len(teams))
			r, err := PostEvents(ctx, cl.HTTP, cl.Origin.URL, OriginToken, t,
				reference.EventsRequest{Type: "user_change", User: users[t], Title: &title})
			if err != nil {
				return
			}
			out[t] = append(out[t], r.FirstSeq)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out, done
}

// scrapeMetrics writes the /metrics of every edge and proxy still running to dir/<name>.prom.
func scrapeMetrics(ctx context.Context, cl *Cluster, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	procs := slices.Clone(cl.Edges)
	if cl.Front == FrontWeft { // nginx has no /metrics
		procs = append(procs, cl.Proxies...)
	}
	for _, p := range procs {
		select {
		case <-p.Exited():
			continue
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.OpsURL+"/metrics", nil)
		if err != nil {
			return err
		}
		resp, err := cl.HTTP.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, p.Name+".prom"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cpuOf reads the CPU time each process has used.
func cpuOf(pids map[string]int) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range pids {
		if u, s, err := ProcessCPU(pid); err == nil {
			out[name] = u + s
		}
	}
	return out
}

// cores is the cores each process used between two readings wall apart.
func cores(from, to map[string]time.Duration, wall time.Duration) map[string]float64 {
	out := map[string]float64{}
	for name, c := range to {
		if c0, ok := from[name]; ok {
			out[name] = math.Round(100*float64(c-c0)/float64(wall)) / 100
		}
	}
	return out
}
