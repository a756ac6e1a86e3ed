package index_test

// Benchmarks of the Quick Switcher on the giant team (366,000 users, 36,000 channels), each side
// by side with bleve alone on the same data in the same run (bleve_baseline_test.go):
//
//	go test ./index -run '^$' -bench Giant -benchtime 1x -timeout 30m
//
//   - BenchmarkGiantBuild: build time, peak heap during the build and heap retained after it;
//   - BenchmarkGiantQuery: latency percentiles over one deterministic mix of prefixes, multi-word
//     queries and typos, overall and per class, and the slowest queries by name;
//   - BenchmarkGiantUserChange: the cost of 10,000 user_change events.
//
// They are benchmarks so that CI never runs them (the giant world alone takes seconds and GBs),
// and they fail only on errors, never on slowness: the budgets (prefix build under 2 s and
// 200 MiB, prefix-query p99 under 1 ms) are for a person to read off the figures. Each b.N
// iteration does the whole measurement once; -benchtime 1x is what they are meant for.
//
// Memory is the Go heap, sampled from runtime/metrics every few ms by a goroutine of its own:
// "peak" is the highest /memory/classes/heap/objects:bytes (live objects and garbage not yet
// swept) seen during the build, less the same figure after a runtime.GC() just before it;
// "retained" is that figure after a runtime.GC() with the index still alive, less the same
// baseline; "alloc" is everything allocated during the build (/gc/heap/allocs:bytes). The giant
// world and its store stay live throughout (well over a GiB), so with the default GOGC the
// collector rarely runs during a build and "peak" is close to "alloc": run with GOGC=25 (or
// lower) to see how far the live peak is below it.

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
)

// ---- memory ----------------------------------------------------------------------------------

const (
	metricHeapObjects = "/memory/classes/heap/objects:bytes"
	metricHeapAllocs  = "/gc/heap/allocs:bytes"
	metricGCCycles    = "/gc/cycles/total:gc-cycles"
	mib               = 1 << 20
)

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapWatch samples the heap every 5 ms from a goroutine of its own and keeps the highest value.
type heapWatch struct {
	base, allocs0 uint64
	gcs0          uint64
	oldGC         int
	peak          atomic.Uint64
	quit, done    chan struct{}
}

// watchHeap collects garbage, takes the baseline and starts sampling. A gcPercent above 0 sets
// the collector's target (debug.SetGCPercent) until stop, so that the peak seen is close to the
// peak of live data rather than of what was allocated.
func watchHeap(gcPercent int) *heapWatch {
	runtime.GC()
	w := &heapWatch{base: readMetric(metricHeapObjects), allocs0: readMetric(metricHeapAllocs),
		gcs0: readMetric(metricGCCycles), quit: make(chan struct{}), done: make(chan struct{}), oldGC: -1}
	if gcPercent > 0 {
		w.oldGC = debug.SetGCPercent(gcPercent)
	}
	w.peak.Store(w.base)
	go func() {
		defer close(w.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.quit:
				w.sample()
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *heapWatch) sample() {
	v := readMetric(metricHeapObjects)
	for {
		p := w.peak.Load()
		if v <= p || w.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// peakMiB is the highest heap seen so far above the baseline.
func (w *heapWatch) peakMiB() float64 {
	w.sample()
	return float64(w.peak.Load()-w.base) / mib
}

// allocMiB is what was allocated since the baseline.
func (w *heapWatch) allocMiB() float64 {
	return float64(readMetric(metricHeapAllocs)-w.allocs0) / mib
}

// stop ends the sampling and returns the peak above the baseline and the collections since.
func (w *heapWatch) stop() (peakMiB float64, gcs int) {
	close(w.quit)
	<-w.done
	if w.oldGC >= 0 {
		debug.SetGCPercent(w.oldGC)
	}
	return float64(w.peak.Load()-w.base) / mib, int(readMetric(metricGCCycles) - w.gcs0)
}

// retainedMiB collects garbage and returns the heap above the baseline (the caller keeps what it
// measures alive until after this call).
func (w *heapWatch) retainedMiB() float64 {
	runtime.GC()
	return (float64(readMetric(metricHeapObjects)) - float64(w.base)) / mib
}

// ---- build -----------------------------------------------------------------------------------

// buildFigures are one build's measurements, for the side-by-side table.
type buildFigures struct {
	name                    string
	gcPercent               int // the collector's target during the build: 0 is the process's
	buildMS, fuzzyMS        float64
	peakMiB, allocMiB       float64 // over the whole build (prefix path and fallback for ours)
	prefixPeak, prefixAlloc float64 // ours: until Ready
	retainedMiB, estMiB     float64
	fuzzyEstMiB             float64
	baseMiB                 float64 // the heap before the build (the world, the store, ...)
	gcs                     int     // collections during the build
	note                    string
}

// lowGC is the collector's target of the builds measured for their live peak: the collector
// runs every 5% of heap growth, so the peak sampled is within a few tens of MiB of the peak of
// live data; their build times are inflated by those collections and are not the build times.
const lowGC = 5

func BenchmarkGiantBuild(b *testing.B) {
	srv, st := giantStore(b)
	var rows []buildFigures
	for _, gc := range []int{0, lowGC} {
		sfx := ""
		if gc > 0 {
			sfx = fmt.Sprintf("-gogc%d", gc)
		}
		b.Run("ours-prefix-only"+sfx, func(b *testing.B) {
			for range b.N {
				f := buildOurs(b, st, index.Config{NoFuzzy: true}, gc)
				f.name = "ours, prefix path only (NoFuzzy)"
				rows = append(rows, f)
			}
		})
		b.Run("ours"+sfx, func(b *testing.B) {
			for range b.N {
				f := buildOurs(b, st, index.Config{}, gc)
				f.name = "ours, Config{}: prefix path, then fallback"
				rows = append(rows, f)
			}
		})
		b.Run("bleve"+sfx, func(b *testing.B) {
			objs := giantObjects(srv)
			for range b.N {
				idx, f := buildBleveMeasured(b, objs, gc)
				_ = idx.Close()
				rows = append(rows, f)
			}
		})
		if gc == 0 && os.Getenv("WEFT_BENCH_NGRAM") != "" { // optional: slow
			b.Run("bleve-edge-ngram"+sfx, func(b *testing.B) {
				objs := giantObjects(srv)
				for range b.N {
					idx, f := buildBleveNgramMeasured(b, objs, gc)
					_ = idx.Close()
					rows = append(rows, f)
				}
			})
		}
	}
	team := srv.TeamIDs()[0]
	var t strings.Builder
	fmt.Fprintf(&t, "build of the giant team (%d objects), GOMAXPROCS=%d; MiB of Go heap above the heap before the build\n",
		len(srv.Users(team))+len(srv.Channels(team)), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&t, "%-46s %5s %9s %9s %9s %9s %9s %9s %9s %9s %5s %9s\n", "", "GOGC", "build ms", "+fuzzy ms", "peak", "allocated", "retained", "estimate", "pfx peak", "pfx alloc", "GCs", "base")
	for _, r := range rows {
		gc := gogc()
		if r.gcPercent > 0 {
			gc = fmt.Sprint(r.gcPercent)
		}
		fmt.Fprintf(&t, "%-46s %5s %9.0f %9.0f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %5d %9.0f %s\n", r.name, gc, r.buildMS, r.fuzzyMS,
			r.peakMiB, r.allocMiB, r.retainedMiB, r.estMiB+r.fuzzyEstMiB, r.prefixPeak, r.prefixAlloc, r.gcs, r.baseMiB, r.note)
	}
	summary(b, t.String())
}

// summary prints a table to the output: a benchmark's log keeps only its first lines, and a
// parent benchmark's log is shown only with -v.
func summary(b *testing.B, s string) {
	fmt.Printf("--- %s:\n%s", b.Name(), s)
}

func gogc() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	return "100"
}

// buildOurs builds an index of st and measures it: the prefix path until Ready, the fallback
// until FuzzyReady (polled every ms).
func buildOurs(b *testing.B, st *cache.Store, cfg index.Config, gcPercent int) (f buildFigures) {
	w := watchHeap(gcPercent)
	f.gcPercent, f.baseMiB = gcPercent, float64(w.base)/mib
	begin := time.Now()
	x := index.New(st, cfg)
	<-x.Ready()
	f.buildMS = ms(time.Since(begin))
	f.prefixPeak, f.prefixAlloc = w.peakMiB(), w.allocMiB()
	if !cfg.NoFuzzy {
		testkit.EventuallyWithin(b, time.Minute, x.FuzzyReady, "the typo fallback")
		f.fuzzyMS = ms(time.Since(begin)) - f.buildMS
	}
	f.allocMiB = w.allocMiB()
	f.peakMiB, f.gcs = w.stop()
	f.retainedMiB = w.retainedMiB()
	s := x.Stats()
	f.estMiB, f.fuzzyEstMiB = float64(s.Bytes)/mib, float64(s.FuzzyBytes)/mib
	x.Close()

	if gcPercent == 0 {
		b.ReportMetric(f.buildMS, "prefix-build-ms")
		b.ReportMetric(f.prefixAlloc, "prefix-alloc-MiB")
		if !cfg.NoFuzzy {
			b.ReportMetric(f.fuzzyMS, "fuzzy-build-ms")
			b.ReportMetric(f.allocMiB, "alloc-MiB")
		}
	}
	b.ReportMetric(f.prefixPeak, "prefix-peak-MiB")
	if !cfg.NoFuzzy {
		b.ReportMetric(f.peakMiB, "peak-MiB")
		b.ReportMetric(f.fuzzyEstMiB, "fuzzy-est-MiB")
	}
	b.ReportMetric(f.retainedMiB, "retained-MiB")
	b.ReportMetric(f.estMiB, "est-MiB")
	b.ReportMetric(float64(s.Terms), "terms")
	b.ReportMetric(float64(s.Objects), "objects")
	b.ReportMetric(float64(f.gcs), "GCs")
	return f
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
