package loadtest

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot/vg"
)

// StormFigures is what a storm measured.
type StormFigures struct {
	// Run numbers the storms of one kind in a `--runs N` series, from 1.
	Run       int  `json:"run,omitempty"`
	Protected bool `json:"protected"`
	// Front is what stood in front of the edges: weft's proxies, or nginx (ClusterConfig.Front).
	Front   string `json:"front,omitempty"`
	Clients int    `json:"clients"`
	Victim  string `json:"victim"` // the edges killed, comma-separated
	// Disturbed clients were on the killed edge.
	Disturbed int `json:"disturbed"`
	// BackAfter: time from the kill until that share of the disturbed clients had a new
	// connection that resumed ("never" when they did not all come back).
	BackAfter map[string]string `json:"back_after"`
	Back      int               `json:"back"`        // disturbed clients back and resumed
	NotResume int               `json:"not_resumed"` // back, but told to boot again
	Refusals  map[string]int64  `json:"refusals"`
	PeakRSS   map[string]int64  `json:"peak_rss_bytes"` // per edge
	Crashed   []string          `json:"crashed"`        // edges that died after the kill (OOM-killed included)
	// OOMKilled edges passed StormConfig.OOMLimit and were killed for it.
	OOMKilled []string `json:"oom_killed,omitempty"`
	// Lost counts marker events (team-wide user_change published after every client was up)
	// a client connected at the end never received; Duplicates counts events a client was
	// sent twice. NotBack counts the clients (disturbed or not) without a connection at the end.
	NotBack    int   `json:"not_back"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	// Probe is the users.info round trips of the probe process's clients that were never
	// disconnected: "before" the kill (steady state), during the "recovery" (from the kill
	// until the last disturbed client is back), and in the "minute" after the kill.
	Probe map[string]Latency `json:"probe"`
	// ProbeBySecond is the same per second, from 2 s before the kill to the end of the
	// recovery: where in the storm the slow requests were.
	ProbeBySecond []SecondLatency `json:"probe_by_second"`
	// SlowProbes are the probes of the recovery over SlowProbe, the first 2,000 in time:
	// [ms after the kill, µs, edge (its number), proxy port], to match against traces.
	SlowProbes  [][4]int64 `json:"slow_probes,omitempty"`
	ProbeErrors int64      `json:"probe_errors"`
	ProbeError  string     `json:"probe_error,omitempty"`
	// CPU is the cores each process used from the kill until every client was back (or the
	// observation ended).
	CPU map[string]float64 `json:"cpu_cores_recovery"`
	// CPUSteady is the cores each process used in the steady state before the kill.
	CPUSteady map[string]float64 `json:"cpu_cores_steady"`
	// CPUBySecond is the cores each process used in each second after the kill, until every
	// client was back: which process was busy in a slow second.
	CPUBySecond []map[string]float64 `json:"cpu_cores_by_second"`
	// Connected is the share of all clients with a live connection, every 250ms after the kill
	// (by the workers' latest statuses; after the observation, its last value).
	Connected []float64 `json:"connected"`
	// Curve is the share of disturbed clients back and resumed, every 250ms after the kill.
	Curve []float64 `json:"curve"`
}

// SlowProbe is the round trip past which a probe of the recovery is listed in SlowProbes: the
// budget's 50 ms, less some, so that the list shows what is close to it too.
const SlowProbe = 40 * time.Millisecond

// Latency is a distribution of round trips, in µs.
type Latency struct {
	N   int   `json:"n"`
	P50 int64 `json:"p50_us"`
	P90 int64 `json:"p90_us"`
	P99 int64 `json:"p99_us"`
	Max int64 `json:"max_us"`
}

// SecondLatency is the probes that started in one second, counted from the kill.
type SecondLatency struct {
	Second int `json:"second"`
	Latency
}

// latencyOf sorts us and reads its percentiles (nearest rank).
func latencyOf(us []int64) Latency {
	if len(us) == 0 {
		return Latency{}
	}
	slices.Sort(us)
	rank := func(q float64) int64 { return us[max(int(math.Ceil(q*float64(len(us))))-1, 0)] }
	return Latency{N: len(us), P50: rank(0.5), P90: rank(0.9), P99: rank(0.99), Max: us[len(us)-1]}
}

// summarize computes the figures from the workers' finals. upAt is when every client was up.
func (f *StormFigures) summarize(workers []*stormWorker, upAt, killAt time.Time, markers map[string][]int64) {
	kill := killAt.UnixMilli()
	f.Refusals = map[string]int64{}
	victims := map[string]bool{}
	for _, v := range strings.Split(f.Victim, ",") {
		victims[v] = true
	}
	var backs []time.Duration
	type probe struct{ at, us int64 }
	var probes []probe
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
			probes = append(probes, probe{p[0], p[1]})
			if p[0] >= kill && p[1] > SlowProbe.Microseconds() {
				f.SlowProbes = append(f.SlowProbes, [4]int64{p[0] - kill, p[1], p[2], p[3]})
			}
		}
		f.ProbeErrors += fin.ProbeErrors
		if f.ProbeError == "" {
			f.ProbeError = fin.ProbeError
		}
		for _, c := range fin.Clients {
			f.Duplicates += c.Duplicates
			if len(c.Down) > 0 && (len(c.Up) == 0 || c.Down[len(c.Down)-1] > c.Up[len(c.Up)-1]) {
				// Down at the end: it could not receive, and a client that comes back resumes
				// from where it was. It is counted as not back, not as losing events.
				f.NotBack++
			} else {
				got := map[int64]bool{}
				for _, s := range c.Markers {
					got[s] = true
				}
				for _, s := range markers[c.Team] {
					if !got[s] {
						f.Lost++
					}
				}
			}
			if !victims[c.FirstNode] {
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
	recoveryEnd := kill + 60_000
	if len(backs) > 0 {
		recoveryEnd = kill + backs[len(backs)-1].Milliseconds()
	}
	window := func(from, to int64) Latency {
		var us []int64
		for _, p := range probes {
			if p.at >= from && p.at < to {
				us = append(us, p.us)
			}
		}
		return latencyOf(us)
	}
	for sec := -2; int64(sec)*1000 <= recoveryEnd-kill; sec++ {
		from := kill + int64(sec)*1000
		f.ProbeBySecond = append(f.ProbeBySecond, SecondLatency{sec, window(from, from+1000)})
	}
	f.SlowProbes = slices.DeleteFunc(f.SlowProbes, func(p [4]int64) bool { return p[0] > recoveryEnd-kill })
	slices.SortFunc(f.SlowProbes, func(a, b [4]int64) int { return cmp.Compare(a[0], b[0]) })
	f.SlowProbes = f.SlowProbes[:min(len(f.SlowProbes), 2000)]
	f.Probe = map[string]Latency{
		"before":   window(upAt.UnixMilli(), kill),
		"recovery": window(kill, recoveryEnd+1),
		"minute":   window(kill, kill+60_000),
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
	for _, c := range []struct {
		when  string
		cores map[string]float64
	}{{"in the steady state", f.CPUSteady}, {"during the recovery", f.CPU}} {
		var sum float64
		fmt.Fprintf(&b, "\n  cores used %s: ", c.when)
		for _, name := range slices.Sorted(maps.Keys(c.cores)) {
			fmt.Fprintf(&b, "%s %.2f  ", name, c.cores[name])
			sum += c.cores[name]
		}
		fmt.Fprintf(&b, "(all %.2f)", sum)
	}
	fmt.Fprintf(&b, "\n  crashed: %v (over the memory limit: %v); clients without a connection at the end: %d\n", f.Crashed, f.OOMKilled, f.NotBack)
	fmt.Fprintf(&b, "  events lost (by clients connected at the end) %d, duplicated %d\n", f.Lost, f.Duplicates)
	fmt.Fprintf(&b, "  users.info from undisturbed clients (probe process), ms:\n")
	for _, w := range []string{"before", "recovery", "minute"} {
		l := f.Probe[w]
		fmt.Fprintf(&b, "    %-8s n %6d  p50 %7.1f  p90 %7.1f  p99 %7.1f  max %7.1f\n", w, l.N,
			float64(l.P50)/1e3, float64(l.P90)/1e3, float64(l.P99)/1e3, float64(l.Max)/1e3)
	}
	fmt.Fprintf(&b, "    p99 by second after the kill:")
	for _, s := range f.ProbeBySecond {
		fmt.Fprintf(&b, " %d:%.0f", s.Second, float64(s.P99)/1e3)
	}
	fmt.Fprintln(&b)
	if len(f.CPUBySecond) > 0 {
		fmt.Fprintf(&b, "  cores by second after the kill (edges, proxies; the rest in storm.json):\n")
		for _, name := range slices.Sorted(maps.Keys(f.CPUBySecond[0])) {
			if !strings.HasPrefix(name, "edge") && !strings.HasPrefix(name, "proxy") {
				continue
			}
			fmt.Fprintf(&b, "    %-8s", name)
			for _, c := range f.CPUBySecond {
				fmt.Fprintf(&b, " %.2f", c[name])
			}
			fmt.Fprintln(&b)
		}
	}
	if f.ProbeErrors > 0 {
		fmt.Fprintf(&b, "  probe errors: %d (first: %s)\n", f.ProbeErrors, f.ProbeError)
	}
	return b.String()
}

// WriteStormPlots draws storm.png (the disturbed clients back and resumed, over the seconds
// since the kill) and connected.png (all clients with a connection) into dir, one line per
// run: with and without admission control and pacing.
func WriteStormPlots(dir string, figs []*StormFigures) error {
	for _, pl := range []struct {
		file, title, y string
		curve          func(*StormFigures) []float64
	}{
		{"storm.png", "disturbed clients back and resumed", "% of the killed edge's clients", func(f *StormFigures) []float64 { return f.Curve }},
		{"connected.png", "all clients connected", "% of all clients", func(f *StormFigures) []float64 { return f.Connected }},
	} {
		var series []Series
		for _, f := range figs {
			name := "with admission control and pacing"
			if !f.Protected {
				name = "without"
			}
			if f.Run > 1 || len(figs) > 2 {
				name += fmt.Sprintf(", run %d", max(f.Run, 1))
			}
			c := pl.curve(f)
			pts := make([][2]float64, len(c))
			for i, v := range c {
				pts[i] = [2]float64{float64(i) / 4, 100 * v} // a point every 250 ms
			}
			series = append(series, Series{name, pts})
		}
		p, err := LinePlot(pl.title, "seconds since the SIGKILL", pl.y, series...)
		if err != nil {
			return err
		}
		p.Y.Min, p.Y.Max = 0, 105
		p.Legend.Top, p.Legend.Left = false, false
		if err := p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, pl.file)); err != nil {
			return err
		}
	}
	return nil
}

// StormRunsSummary is the recovery figures of a `--runs N` series, per kind: the undisturbed
// p99 of every run with their median, and the time until the last client was back.
func StormRunsSummary(figs []*StormFigures) string {
	var b strings.Builder
	for _, protected := range []bool{true, false} {
		var p99s []float64
		var line, backs strings.Builder
		for _, f := range figs {
			if f.Protected != protected {
				continue
			}
			v := float64(f.Probe["recovery"].P99) / 1e3
			p99s = append(p99s, v)
			fmt.Fprintf(&line, " %.1f", v)
			fmt.Fprintf(&backs, " %s", f.BackAfter["p100"])
		}
		if len(p99s) == 0 {
			continue
		}
		kind := map[bool]string{true: "with admission control and pacing", false: "without"}[protected]
		fmt.Fprintf(&b, "%d storms %s: undisturbed p99 during the recovery, ms:%s (median %.1f); all back after:%s\n",
			len(p99s), kind, line.String(), median(p99s), backs.String())
	}
	return b.String()
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}
