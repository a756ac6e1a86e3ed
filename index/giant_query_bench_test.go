package index_test

// The query-mix benchmark of the giant team: see giant_bench_test.go.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
)

// ---- the query mix ---------------------------------------------------------------------------

// Query classes of the mix, and the groups percentiles are reported for.
const (
	classP1    = "prefix1" // one word: the first letter of a name word
	classP2    = "prefix2"
	classP3    = "prefix3"
	classP4    = "prefix4"
	classMulti = "multi" // "first-name" + 1-3 letters of the last name, or two channel-name words
	classTypo  = "typo"  // a 5-7 letter name word with two adjacent letters swapped or one replaced
)

var (
	mixClasses = []string{classP1, classP2, classP3, classP4, classMulti, classTypo}
	mixGroups  = []string{"all", "prefix", classP1, classP2, classP3, classP4, classMulti, classTypo}
)

func inGroup(class, group string) bool {
	switch group {
	case "all":
		return true
	case "prefix":
		return strings.HasPrefix(class, "prefix")
	}
	return class == group
}

type giantQuery struct {
	class, text, caller string
}

const (
	mixSeed1, mixSeed2 = 0x5eed, 0x9147 // the mix is the same in every run
	mixSize            = 20_000
	mixWarmup          = 500 // the first queries of the mix, run once unrecorded before the mix
	mixBudget          = 20 * time.Second
)

// giantQueryMix draws n queries from the team's real names, in random order: 60% single-word
// prefixes (15% each of 1, 2, 3 and 4 letters; of a user's word 3 times in 4, of a channel's
// otherwise), 20% multi-word (half "first-name" + 1-3 letters of a user's last real-name word,
// half two consecutive words of a channel name), 20% typos (a 5-7 letter word of a user's real
// name, half with two different adjacent letters swapped, half with one letter replaced). The
// callers are random live users.
func giantQueryMix(srv *reference.Server, n int) []giantQuery {
	team := srv.TeamIDs()[0]
	users, chans := srv.Users(team), srv.Channels(team)
	r := rand.New(rand.NewPCG(mixSeed1, mixSeed2))
	userWords := func(u *origin.User) []string {
		return slices.Concat(index.Words(u.Name), index.Words(u.DisplayName), index.Words(u.RealName))
	}
	caller := func() string {
		for {
			if u := &users[r.IntN(len(users))]; !u.Deleted {
				return u.ID
			}
		}
	}
	prefixOf := func(w string, n int) string { return string([]rune(w)[:n]) }
	isLetters := func(w string) bool {
		return !strings.ContainsFunc(w, func(c rune) bool { return c < 'a' || c > 'z' })
	}
	out := make([]giantQuery, 0, n)
	for len(out) < n {
		var q giantQuery
		switch k := r.IntN(100); {
		case k < 60:
			letters := 1 + k/15
			q.class = mixClasses[letters-1]
			for q.text == "" {
				var ws []string
				if r.IntN(4) < 3 {
					ws = userWords(&users[r.IntN(len(users))])
				} else {
					ws = index.Words(chans[r.IntN(len(chans))].Name)
				}
				if len(ws) == 0 {
					continue
				}
				if w := ws[r.IntN(len(ws))]; utf8.RuneCountInString(w) >= letters {
					q.text = prefixOf(w, letters)
				}
			}
		case k < 80:
			q.class = classMulti
			for q.text == "" {
				if r.IntN(2) == 0 {
					ws := index.Words(users[r.IntN(len(users))].RealName)
					if len(ws) < 2 {
						continue
					}
					last := ws[len(ws)-1]
					q.text = ws[0] + " " + prefixOf(last, min(utf8.RuneCountInString(last), 1+r.IntN(3)))
				} else {
					ws := index.Words(chans[r.IntN(len(chans))].Name)
					if len(ws) < 2 {
						continue
					}
					i := r.IntN(len(ws) - 1)
					q.text = ws[i] + " " + ws[i+1]
				}
			}
		default:
			q.class = classTypo
			for q.text == "" {
				ws := index.Words(users[r.IntN(len(users))].RealName)
				w := ws[r.IntN(len(ws))]
				if len(w) < 5 || len(w) > 7 || !isLetters(w) {
					continue
				}
				t := []byte(w)
				if r.IntN(2) == 0 {
					i := r.IntN(len(t) - 1)
					if t[i] == t[i+1] {
						continue
					}
					t[i], t[i+1] = t[i+1], t[i]
				} else {
					i := r.IntN(len(t))
					c := byte('a' + r.IntN(25))
					if c >= t[i] {
						c++ // any letter but the one there
					}
					t[i] = c
				}
				q.text = string(t)
			}
		}
		q.caller = caller()
		out = append(out, q)
	}
	return out
}

// mixRun is one engine's run of the mix: durs[i] and hits[i] are mix[i]'s, for i < n.
type mixRun struct {
	name    string
	mix     []giantQuery
	durs    []time.Duration
	hits    []int
	n       int
	elapsed time.Duration
	rerun   map[int]time.Duration // the slowest queries' best of 3 runs after the mix
}

// runMix runs the first mixWarmup queries unrecorded, then the mix in order on this goroutine
// until it is done or mixBudget has passed, timing each query.
func runMix(b *testing.B, name string, mix []giantQuery, search func(q *giantQuery) (hits int, err error)) *mixRun {
	m := &mixRun{name: name, mix: mix, durs: make([]time.Duration, len(mix)), hits: make([]int, len(mix))}
	for i := range min(mixWarmup, len(mix)) {
		if _, err := search(&mix[i]); err != nil {
			b.Fatalf("%s: %q: %v", name, mix[i].text, err)
		}
	}
	runtime.GC()
	begin := time.Now()
	for i := range mix {
		if i > 0 && time.Since(begin) > mixBudget {
			break
		}
		t := time.Now()
		hits, err := search(&mix[i])
		m.durs[i] = time.Since(t)
		if err != nil {
			b.Fatalf("%s: %q: %v", name, mix[i].text, err)
		}
		m.hits[i] = hits
		m.n = i + 1
	}
	m.elapsed = time.Since(begin)
	// Run the slowest queries again: a slow one may have met a collection.
	m.rerun = make(map[int]time.Duration)
	for _, g := range mixClasses {
		for _, i := range m.slowest(g, 5) {
			for range 3 {
				t := time.Now()
				if _, err := search(&mix[i]); err != nil {
					b.Fatalf("%s: %q: %v", name, mix[i].text, err)
				}
				if d := time.Since(t); m.rerun[i] == 0 || d < m.rerun[i] {
					m.rerun[i] = d
				}
			}
		}
	}
	return m
}

type pcts struct {
	n                  int
	p50, p90, p99, max time.Duration
	empty              int // queries with no result
}

func (m *mixRun) stats(group string) (p pcts) {
	var ds []time.Duration
	for i := range m.n {
		if inGroup(m.mix[i].class, group) {
			ds = append(ds, m.durs[i])
			if m.hits[i] == 0 {
				p.empty++
			}
		}
	}
	if len(ds) == 0 {
		return p
	}
	slices.Sort(ds)
	rank := func(q float64) time.Duration { // nearest rank
		i := int(q*float64(len(ds))+0.999999) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	p.n, p.p50, p.p90, p.p99, p.max = len(ds), rank(0.50), rank(0.90), rank(0.99), ds[len(ds)-1]
	return p
}

// slowest returns the indexes of the k slowest queries of group.
func (m *mixRun) slowest(group string, k int) []int {
	var is []int
	for i := range m.n {
		if inGroup(m.mix[i].class, group) {
			is = append(is, i)
		}
	}
	slices.SortFunc(is, func(a, c int) int { return int(m.durs[c] - m.durs[a]) })
	return is[:min(k, len(is))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// report puts the percentiles in the benchmark's metrics and logs a table with the slowest
// queries.
func (m *mixRun) report(b *testing.B) {
	b.ReportMetric(float64(m.n), "queries")
	b.ReportMetric(us(m.elapsed)/float64(m.n), "mean-µs")
	for _, g := range mixGroups {
		p := m.stats(g)
		if p.n == 0 {
			continue
		}
		b.ReportMetric(us(p.p50), "p50-"+g+"-µs")
		b.ReportMetric(us(p.p90), "p90-"+g+"-µs")
		b.ReportMetric(us(p.p99), "p99-"+g+"-µs")
		b.ReportMetric(us(p.max), "max-"+g+"-µs")
	}
	var t strings.Builder
	fmt.Fprintf(&t, "%s: %d queries in %v (single goroutine)\n", m.name, m.n, m.elapsed.Round(time.Millisecond))
	fmt.Fprintf(&t, "%-8s %6s %10s %10s %10s %10s %7s\n", "class", "n", "p50 µs", "p90 µs", "p99 µs", "max µs", "empty")
	for _, g := range mixGroups {
		p := m.stats(g)
		fmt.Fprintf(&t, "%-8s %6d %10.1f %10.1f %10.1f %10.1f %7d\n", g, p.n, us(p.p50), us(p.p90), us(p.p99), us(p.max), p.empty)
	}
	t.WriteString("slowest per class, µs in the mix (best of 3 runs after it):\n")
	for _, g := range mixClasses {
		fmt.Fprintf(&t, "  %-8s", g)
		for _, i := range m.slowest(g, 5) {
			fmt.Fprintf(&t, " %q %.0f (%.0f);", m.mix[i].text, us(m.durs[i]), us(m.rerun[i]))
		}
		t.WriteString("\n")
	}
	summary(b, t.String())
}

func BenchmarkGiantQuery(b *testing.B) {
	srv, st := giantStore(b)
	mix := giantQueryMix(srv, mixSize)
	var runs []*mixRun
	b.Run("ours", func(b *testing.B) {
		x := index.New(st, index.Config{})
		defer x.Close()
		<-x.Ready()
		testkit.EventuallyWithin(b, time.Minute, x.FuzzyReady, "the typo fallback")
		ctx := context.Background()
		for range b.N {
			m := runMix(b, "ours", mix, func(q *giantQuery) (int, error) {
				res, err := x.Search(ctx, index.Query{Text: q.text, Caller: q.caller})
				return len(res), err
			})
			m.report(b)
			runs = append(runs, m)
		}
	})
	b.Run("bleve", func(b *testing.B) {
		idx, _ := buildBleve(b, giantObjects(srv))
		defer idx.Close()
		for range b.N {
			m := runMix(b, "bleve alone", mix, func(q *giantQuery) (int, error) { return searchBleve(idx, q) })
			m.report(b)
			runs = append(runs, m)
		}
	})
	if len(runs) < 2 {
		return
	}
	var t strings.Builder
	fmt.Fprintf(&t, "query latency, µs, p50 / p90 / p99 / max (n): %d-query mix of the giant team, Limit 10, GOMAXPROCS=%d\n", mixSize, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&t, "%-8s", "class")
	for _, m := range runs {
		fmt.Fprintf(&t, " | %-44s", m.name)
	}
	t.WriteString("\n")
	for _, g := range mixGroups {
		fmt.Fprintf(&t, "%-8s", g)
		for _, m := range runs {
			p := m.stats(g)
			fmt.Fprintf(&t, " | %-44s", fmt.Sprintf("%.0f / %.0f / %.0f / %.0f (%d)", us(p.p50), us(p.p90), us(p.p99), us(p.max), p.n))
		}
		t.WriteString("\n")
	}
	summary(b, t.String())
}
