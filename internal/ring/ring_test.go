package ring

import (
	"fmt"
	"testing"
)

func nodes(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("edge-%d", i+1))
	}
	return out
}

func teamKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("T%06d", i)
	}
	return keys
}

// moves compares two rings over keys: the fraction of keys whose owner differs, and of those
// how many went somewhere other than to (when to is not "").
func moves(a, b *Ring, keys []string, to string) (frac float64, elsewhere int) {
	n := 0
	for _, k := range keys {
		if oa, ob := a.Owner(k), b.Owner(k); oa != ob {
			n++
			if to != "" && ob != to {
				elsewhere++
			}
		}
	}
	return float64(n) / float64(len(keys)), elsewhere
}

func maxOverMean(r *Ring, keys []string) float64 {
	load := map[string]int{}
	for _, k := range keys {
		load[r.Owner(k)]++
	}
	mx := 0
	for _, l := range load {
		mx = max(mx, l)
	}
	return float64(mx) / (float64(len(keys)) / float64(len(r.Nodes())))
}

func TestRingOrderAndDuplicatesDoNotMatter(t *testing.T) {
	a := New([]string{"edge-3", "edge-1", "edge-2"})
	b := New([]string{"edge-2", "edge-2", "edge-3", "edge-1"})
	if a.Key() != b.Key() {
		t.Fatalf("keys %q vs %q", a.Key(), b.Key())
	}
	for _, k := range teamKeys(10000) {
		if a.Owner(k) != b.Owner(k) {
			t.Fatalf("team %s: %s vs %s", k, a.Owner(k), b.Owner(k))
		}
	}
	if New(nil).Owner("T1") != "" {
		t.Fatal("an empty ring owns nothing")
	}
}

// TestRingMovesNearIdeal holds the docs/architecture.md's performance budgets on 100,000 teams: a join or a leave moves
// at most 1.5x the ideal 1/N of the teams, and no edge holds more than 1.25x the mean... plus
// the key-level noise of 100,000 teams, which at 50 edges (2,000 teams each) is a few percent.
func TestRingMovesNearIdeal(t *testing.T) {
	keys := teamKeys(100_000)
	for _, n := range []int{3, 10, 50} {
		a := New(nodes(n))
		joined := fmt.Sprintf("edge-%d", n+1)
		add, _ := moves(a, a.With(joined), keys, joined)
		rm, _ := moves(a, a.Without(nodes(n)[n/2]), keys, "")
		if add > 1.5/float64(n+1) || rm > 1.5/float64(n) {
			t.Errorf("n=%d: add moved %.4f (ideal %.4f), remove moved %.4f (ideal %.4f)", n, add, 1/float64(n+1), rm, 1/float64(n))
		}
		if mm := maxOverMean(a, keys); mm > 1.3 {
			t.Errorf("n=%d: max/mean load %.3f", n, mm)
		}
	}
}

// BenchmarkRingMoves reports, for 3, 10 and 50 edges and 100,000 teams, the fraction of teams
// that move when one edge joins or leaves (as a multiple of the ideal 1/N), how many of a
// join's moves went anywhere but to the new edge, and max/mean load.
func BenchmarkRingMoves(b *testing.B) {
	keys := teamKeys(100_000)
	for _, n := range []int{3, 10, 50} {
		b.Run(fmt.Sprintf("edges=%d", n), func(b *testing.B) {
			var add, rm, mm float64
			var elsewhere int
			for b.Loop() {
				a := New(nodes(n))
				joined := fmt.Sprintf("edge-%d", n+1)
				add, elsewhere = moves(a, a.With(joined), keys, joined)
				rm, _ = moves(a, a.Without(nodes(n)[n/2]), keys, "")
				mm = maxOverMean(a, keys)
			}
			b.ReportMetric(add*float64(n+1), "join-moved/ideal")
			b.ReportMetric(rm*float64(n), "leave-moved/ideal")
			b.ReportMetric(float64(elsewhere)/float64(len(keys)), "join-moved-elsewhere")
			b.ReportMetric(mm, "max/mean")
		})
	}
}

func BenchmarkRingBuild(b *testing.B) {
	for _, n := range []int{3, 10, 50} {
		ns := nodes(n)
		b.Run(fmt.Sprintf("edges=%d", n), func(b *testing.B) {
			for b.Loop() {
				New(ns)
			}
		})
	}
}

func BenchmarkRingOwner(b *testing.B) {
	r := New(nodes(3))
	for b.Loop() {
		r.Owner("T000123")
	}
}
