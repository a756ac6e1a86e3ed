package loadtest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLatencyOfNearestRank(t *testing.T) {
	var us []int64
	for i := int64(100); i >= 1; i-- { // unsorted on purpose
		us = append(us, i)
	}
	got := latencyOf(us)
	want := Latency{N: 100, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("latencyOf(1..100) = %+v, want %+v", got, want)
	}
	if one := latencyOf([]int64{7}); one != (Latency{N: 1, P50: 7, P90: 7, P99: 7, Max: 7}) {
		t.Fatalf("latencyOf([7]) = %+v", one)
	}
	if none := latencyOf(nil); none != (Latency{}) {
		t.Fatalf("latencyOf(nil) = %+v", none)
	}
}

// TestSummarize: the figures of a made-up storm: who was disturbed, when each came back and
// resumed, lost and duplicated markers, and probes sorted into their windows.
func TestSummarize(t *testing.T) {
	upAt := time.UnixMilli(1_000_000)
	kill := upAt.Add(10 * time.Second)
	k := kill.UnixMilli()
	markers := map[string][]int64{"T1": {5, 6}, "T2": {9}}
	w := &stormWorker{final: &WorkerFinal{
		Clients: []ClientReport{
			{Team: "T1", FirstNode: "edge-1", Up: []int64{k - 5000, k + 2000}, Resumed: []bool{false, true}, Markers: []int64{5, 6}},
			{Team: "T1", FirstNode: "edge-1", Up: []int64{k - 5000, k + 4000}, Resumed: []bool{false, true}, Markers: []int64{5}},
			{Team: "T2", FirstNode: "edge-1", Up: []int64{k - 5000, k + 3000}, Resumed: []bool{false, false}, Markers: []int64{9}},
			{Team: "T2", FirstNode: "edge-2", Up: []int64{k - 5000}, Resumed: []bool{false}, Duplicates: 2},
			// Down at the end (its edge died too): not back, and its missing markers are not lost.
			{Team: "T1", FirstNode: "edge-3", Up: []int64{k - 5000}, Down: []int64{k + 500}, Resumed: []bool{false}},
		},
		Probes: [][4]int64{
			{k - 1000, 100, 2, 1}, {k - 500, 300, 2, 1}, // before
			{k + 1000, 1000, 2, 1}, {k + 3999, 41_000, 3, 7}, // recovery (ends at the last back, +4s)
			{k + 30_000, 50_000, 2, 1},      // minute only: slow, but not in the recovery
			{k + 61_000, 9000, 2, 1},        // none
			{upAt.UnixMilli() - 1, 7, 2, 1}, // before the clients were all up: none
		},
	}, status: WorkerStatus{Refusals: map[string]int64{"connection_lost": 3}}}
	f := &StormFigures{Victim: "edge-1"}
	f.summarize([]*stormWorker{w}, upAt, kill, markers)
	if f.Disturbed != 3 || f.Back != 2 || f.NotResume != 1 {
		t.Fatalf("disturbed %d back %d not resumed %d, want 3 2 1", f.Disturbed, f.Back, f.NotResume)
	}
	if f.NotBack != 1 {
		t.Fatalf("not back %d, want 1", f.NotBack)
	}
	if f.Lost != 2 || f.Duplicates != 2 { // T1's marker 6 to the second client, T2's 9 to the fourth
		t.Fatalf("lost %d duplicates %d, want 2 and 2", f.Lost, f.Duplicates)
	}
	// Two of three back (2s, 4s): 50% needs two, at 4s; 90% and 100% never (one was told to
	// boot again).
	if f.BackAfter["p50"] != "4s" || f.BackAfter["p90"] != "never" || f.BackAfter["p100"] != "never" {
		t.Fatalf("back after %v", f.BackAfter)
	}
	if f.Refusals["connection_lost"] != 3 {
		t.Fatalf("refusals %v", f.Refusals)
	}
	want := map[string]Latency{
		"before":   {N: 2, P50: 100, P90: 300, P99: 300, Max: 300},
		"recovery": {N: 2, P50: 1000, P90: 41_000, P99: 41_000, Max: 41_000},
		"minute":   {N: 3, P50: 41_000, P90: 50_000, P99: 50_000, Max: 50_000},
	}
	for k, v := range want {
		if f.Probe[k] != v {
			t.Fatalf("probe window %s = %+v, want %+v", k, f.Probe[k], v)
		}
	}
	if len(f.ProbeBySecond) != 7 || f.ProbeBySecond[0].Second != -2 || f.ProbeBySecond[1].N != 2 ||
		f.ProbeBySecond[3].P50 != 1000 || f.ProbeBySecond[5].Max != 41_000 || f.ProbeBySecond[6].N != 0 {
		t.Fatalf("by second: %+v", f.ProbeBySecond)
	}
	if !slices.Equal(f.SlowProbes, [][4]int64{{3999, 41_000, 3, 7}}) {
		t.Fatalf("slow probes %v, want the one of the recovery over 40 ms", f.SlowProbes)
	}
	if f.Curve[7] != 0 || f.Curve[8] != 1.0/3 || f.Curve[16] != 2.0/3 { // every 250ms: 2s is index 8
		t.Fatalf("curve at 1.75s, 2s, 4s: %v %v %v", f.Curve[7], f.Curve[8], f.Curve[16])
	}
}

// TestStormRunsSummary: the median of a series is the middle run's p99 (or the mean of the
// two middle ones), per kind.
func TestStormRunsSummary(t *testing.T) {
	fig := func(protected bool, run int, p99ms int64) *StormFigures {
		return &StormFigures{Protected: protected, Run: run, BackAfter: map[string]string{"p100": "18s"},
			Probe: map[string]Latency{"recovery": {P99: p99ms * 1000}}}
	}
	got := StormRunsSummary([]*StormFigures{fig(true, 1, 60), fig(true, 2, 30), fig(true, 3, 45), fig(false, 1, 70), fig(false, 2, 80)})
	for _, want := range []string{"3 storms with admission control and pacing: undisturbed p99 during the recovery, ms: 60.0 30.0 45.0 (median 45.0)",
		"2 storms without: undisturbed p99 during the recovery, ms: 70.0 80.0 (median 75.0); all back after: 18s 18s"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary\n%s\nlacks %q", got, want)
		}
	}
}
