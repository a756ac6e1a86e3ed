package loadtest

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// frontRow is one figure of the fronts table and how to read it off a front's run.
type frontRow struct {
	name   string
	get    func(*FrontFigures) float64
	format func(float64) string
	// lowerWins: weft's median must be at most nginx's (the targets).
	lowerWins bool
}

func µs(v float64) string { return fmt.Sprintf("%.0f µs", v*1e3) }

func seconds(v float64) string {
	if math.IsInf(v, 1) {
		return "never"
	}
	return fmt.Sprintf("%.2f s", v)
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }

// stormBack is when that share of the storm's disturbed clients were back, in seconds
// (+Inf: never).
func stormBack(q string) func(*FrontFigures) float64 {
	return func(f *FrontFigures) float64 {
		if f.Storm == nil {
			return math.NaN()
		}
		d, err := time.ParseDuration(f.Storm.BackAfter[q])
		if err != nil {
			return math.Inf(1)
		}
		return d.Seconds()
	}
}

func stormCount(get func(*StormFigures) float64) func(*FrontFigures) float64 {
	return func(f *FrontFigures) float64 {
		if f.Storm == nil {
			return math.NaN()
		}
		return get(f.Storm)
	}
}

var frontRows = []frontRow{
	{"setup, dial to hello, straight to the edge: p50", func(f *FrontFigures) float64 { return f.SetupDirect.P50 }, µs, false},
	{"setup through the front: p50", func(f *FrontFigures) float64 { return f.SetupVia.P50 }, µs, false},
	{"setup through the front: p99", func(f *FrontFigures) float64 { return f.SetupVia.P99 }, µs, false},
	{"added setup latency: p50", func(f *FrontFigures) float64 { return f.AddedSetupP50 }, µs, true},
	{"users.info round trip straight to the edge: p50", func(f *FrontFigures) float64 { return f.RTTDirect.P50 }, µs, false},
	{"users.info round trip through the front: p50", func(f *FrontFigures) float64 { return f.RTTVia.P50 }, µs, false},
	{"users.info round trip through the front: p99", func(f *FrontFigures) float64 { return f.RTTVia.P99 }, µs, false},
	{"added request round trip: p50", func(f *FrontFigures) float64 { return f.AddedRTTP50 }, µs, true},
	{"RSS per proxied connection", func(f *FrontFigures) float64 { return f.RSSPerConn }, bytesIEC, true},
	{"storm: clients of the killed edge", stormCount(func(s *StormFigures) float64 { return float64(s.Disturbed) }), count, false},
	{"storm: half of them back", stormBack("p50"), seconds, false},
	{"storm: all of them back", stormBack("p100"), seconds, true},
	{"storm: users.info of undisturbed clients meanwhile: p99 (ms)", stormCount(func(s *StormFigures) float64 { return float64(s.Probe["recovery"].P99) / 1e3 }), ms, false},
	{"storm: … and how many were asked", stormCount(func(s *StormFigures) float64 { return float64(s.Probe["recovery"].N) }), count, false},
	{"storm: 429s while they came back", stormCount(func(s *StormFigures) float64 { return float64(s.Refusals["429_rate_limited"]) }), count, false},
	{"storm: events lost + duplicated", stormCount(func(s *StormFigures) float64 { return float64(s.Lost + s.Duplicates) }), count, false},
}

// FrontsReport is the fronts scenario's report: each figure per front as the median of the
// runs with their range, and whether weft's median is within nginx's where the issue sets that
// target.
func FrontsReport(runs [][]*FrontFigures, workload, command string) *Report {
	r := &Report{Scenario: "fronts", At: time.Now().UTC(), Command: command, Workload: workload, Figures: runs}
	var fronts []string
	if len(runs) > 0 {
		for _, f := range runs[0] {
			fronts = append(fronts, f.Front)
		}
	}
	header := append([]string{"figure"}, fronts...)
	weft, nginx := slices.Index(fronts, FrontWeft), slices.Index(fronts, FrontNginx)
	compare := weft >= 0 && nginx >= 0
	if compare {
		header = append(header, "weft ≤ nginx")
	}
	r.Table = [][]string{header}
	for _, row := range frontRows {
		line := []string{row.name}
		var medians []float64
		for i := range fronts {
			var vs []float64
			for _, run := range runs {
				if i < len(run) {
					if v := row.get(run[i]); !math.IsNaN(v) {
						vs = append(vs, v)
					}
				}
			}
			m, s := spread(vs, row.format)
			medians = append(medians, m)
			line = append(line, s)
		}
		if compare {
			verdict := ""
			if row.lowerWins {
				verdict = map[bool]string{true: "yes", false: "no"}[medians[weft] <= medians[nginx]]
			}
			line = append(line, verdict)
		}
		r.Table = append(r.Table, line)
	}
	r.Notes = []string{
		fmt.Sprintf("each figure: the median of %d runs (lowest–highest); each run starts each front's cluster afresh (the reference origin with NATS, 3 edges, 1 front), weft's first", len(runs)),
		"weft: `weft proxy` over edges in a ring, which check that they own each team; nginx: Debian's nginx-light, `hash $arg_team consistent` over `weft edge --standalone`; both at their defaults (nginx: worker_processes auto, no access log, nginx's WebSocket lines)",
		"setup: dial, WebSocket handshake and hello, one session at a time, paced, alternating with the same setup straight to the edge the front chose; added = the two medians' difference",
		"relay (when measured): a plain Go TCP relay (a goroutine per connection, io.Copy each way) to one `weft edge --standalone`: what Go's runtime and the extra hop cost before any proxy logic; no storm (its one edge is the one killed)",
		"round trip: users.info on open sessions (20 through the front, 20 straight to the edge), paced, alternating",
		"RSS per proxied connection: the front's RSS (nginx: master and workers) with the idle sessions open, less before, over the sessions",
		"storm: the same clients (Go client package, in a worker process) spread over the world's teams; the edge with the most is SIGKILLed; back = reconnected and resumed, timed from the kill; 20 of the clients that were not on that edge ask users.info every 50 ms, and those asked between the kill and the last disturbed client back are the 'meanwhile'",
	}
	return r
}
