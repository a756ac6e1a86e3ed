package edge

import (
	"context"
	"errors"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"time"
)

// Admission levels, from the live heap against the memory budget.
const (
	levelNormal   int32 = iota // admit everything
	levelHigh                  // refuse new connections, new team loads, /readyz
	levelCritical              // also unload idle teams, shed work for teams not loaded, no bleve builds
)

var levelNames = [...]string{"normal", "high", "critical"}

// ErrOverloaded refuses work the node has no memory for.
var ErrOverloaded = errors.New("edge: over its memory budget")

// MemGauge reads the memory the node is holding. The runtime's (RuntimeGauge) samples
// runtime/metrics; tests drive admission through their own.
type MemGauge interface {
	HeapBytes() uint64
}

// FootprintGauge is a MemGauge that can also tell the memory the node needs from the memory
// it holds: HeapBytes counts garbage not yet collected, Footprint only what the last
// collection found live (plus stacks and the runtime's own), and Collect runs a collection so
// that Footprint is fresh. With it, admission lets the collector run against the budget
// (rarely) instead of at GOGC's 100% (often): garbage is the collector's business, and
// admission refuses work only for memory that is really in use.
type FootprintGauge interface {
	MemGauge
	Footprint() uint64
	Collect()
}

// RuntimeGauge reads runtime/metrics (a cheap read: no stop-the-world, unlike
// runtime.ReadMemStats). HeapBytes is the memory the Go runtime holds from the OS and has not
// returned: what GOMEMLIMIT (set to the same budget) limits, and close to the process's RSS.
// It counts the heap's objects, live or not yet swept, and also goroutine stacks and the
// runtime's own structures: with two goroutines per WebSocket session, stacks alone were a
// third of an edge's memory in the storm (55 MB of 250 at 7,800 sessions), which a gauge of
// heap objects alone did not see. Footprint is the same with the heap's objects replaced by
// the live heap of the last collection, and without free and unused heap spans.
type RuntimeGauge struct{}

var gaugeMetrics = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/objects:bytes", "/gc/heap/live:bytes"}

func readGauge() (held, footprint uint64) {
	s := make([]rtmetrics.Sample, len(gaugeMetrics))
	for i, name := range gaugeMetrics {
		s[i].Name = name
	}
	rtmetrics.Read(s)
	var v [6]uint64
	for i, x := range s {
		if x.Value.Kind() != rtmetrics.KindUint64 {
			return 0, 0
		}
		v[i] = x.Value.Uint64()
	}
	total, released, free, unused, objects, live := v[0], v[1], v[2], v[3], v[4], v[5]
	if released > total {
		return 0, 0
	}
	held = total - released
	if other := held - min(held, free+unused+objects); live > 0 {
		footprint = other + live
	} else { // no collection yet: nothing better than what is held
		footprint = held
	}
	return held, min(footprint, held)
}

func (RuntimeGauge) HeapBytes() uint64 { held, _ := readGauge(); return held }

func (RuntimeGauge) Footprint() uint64 { _, f := readGauge(); return f }

// Collect runs a collection (concurrent with the program; it blocks only its caller, the
// admission sampler).
func (RuntimeGauge) Collect() { runtime.GC() }

// AdmissionConfig is memory-based admission control. Zero Budget turns it off.
type AdmissionConfig struct {
	// Budget is the memory the node may use (cmd/weft also sets GOMEMLIMIT to it). The
	// watermarks are fractions of it: High (default 0.70) refuses new work, Critical (0.85)
	// sheds, and reads under Low (0.60) admit again.
	Budget              int64
	High, Critical, Low float64
	Gauge               MemGauge      // default RuntimeGauge
	SampleEvery         time.Duration // default 200ms
	// UnloadPerSample is how many idle teams are unloaded per sample while critical; default 4.
	UnloadPerSample int
}

// admission holds the node's level; reading it on the hot path is one atomic load.
type admission struct {
	cfg                 AdmissionConfig
	level               atomic.Int32
	heap                atomic.Uint64 // last sample
	collections         atomic.Int64  // collections run by use
	collected           time.Time     // the last of them; the sampler's own
	high, critical, low uint64
}

func newAdmission(cfg AdmissionConfig) *admission {
	if cfg.Budget <= 0 {
		return nil
	}
	if cfg.High <= 0 {
		cfg.High = 0.70
	}
	if cfg.Critical <= 0 {
		cfg.Critical = 0.85
	}
	if cfg.Low <= 0 {
		cfg.Low = 0.60
	}
	if cfg.Gauge == nil {
		cfg.Gauge = RuntimeGauge{}
	}
	setDefault(&cfg.SampleEvery, 200*time.Millisecond)
	setDefault(&cfg.UnloadPerSample, 4)
	b := float64(cfg.Budget)
	return &admission{cfg: cfg, high: uint64(b * cfg.High), critical: uint64(b * cfg.Critical), low: uint64(b * cfg.Low)}
}

// Level is the node's admission level: "normal", "high" or "critical".
func (s *Server) Level() string {
	if s.admit == nil {
		return levelNames[levelNormal]
	}
	return levelNames[s.admit.level.Load()]
}

// over reports whether the node is at level l or above. Nil admission: never.
func (a *admission) over(l int32) bool { return a != nil && a.level.Load() >= l }

// sample reads the gauge and moves between levels: up as soon as a watermark is crossed,
// down from critical under high, and back to normal only under low, so that a heap hovering
// at a watermark does not flap between admitting and refusing.
func (s *Server) sample() {
	a := s.admit
	heap := a.use(time.Now(), a.level.Load())
	a.heap.Store(heap)
	old := a.level.Load()
	next := old
	switch {
	case heap >= a.critical:
		next = levelCritical
	case heap >= a.high:
		next = max(old, levelHigh)
		if old == levelCritical {
			next = levelHigh
		}
	case heap < a.low:
		next = levelNormal
	default: // between low and high: stay, except that critical eases to high
		next = min(old, levelHigh)
	}
	if next != old {
		a.level.Store(next)
		s.metrics.admissionChanges.WithLabelValues(levelNames[next]).Inc()
		s.log.Warn("admission level changed", "from", levelNames[old], "to", levelNames[next],
			"heap_mib", heap>>20, "budget_mib", a.cfg.Budget>>20)
	}
	if next == levelCritical {
		if n := s.teams.UnloadLRU(a.cfg.UnloadPerSample); n > 0 {
			s.metrics.shedUnloads.Add(float64(n))
			s.log.Warn("critical memory: unloaded idle teams", "teams", n)
		}
	}
}

// use is the memory the levels are decided on, at level. Held memory under the low watermark
// needs no more thought (what is needed is never more than what is held). Above it, a
// FootprintGauge tells garbage apart: its footprint is as of the last collection, so a
// collection is run to bring it up to date when what is held reaches the critical watermark
// (at most one a second), and every 5 s while the node refuses work (with the collector off,
// nothing else would notice that sessions have gone). Between collections, work that a fresh
// footprint would refuse can be admitted, but never past the critical watermark of held
// memory, and GOMEMLIMIT makes the collector hold the budget meanwhile.
func (a *admission) use(now time.Time, level int32) uint64 {
	held := a.cfg.Gauge.HeapBytes()
	fg, ok := a.cfg.Gauge.(FootprintGauge)
	if !ok || held < a.low {
		return held
	}
	since := now.Sub(a.collected)
	if (held >= a.critical && since >= time.Second) || (level > levelNormal && since >= 5*time.Second) {
		a.collected = now
		fg.Collect()
		a.collections.Add(1)
	}
	return fg.Footprint()
}

// runAdmission samples until ctx ends.
func (s *Server) runAdmission(ctx context.Context) {
	t := time.NewTicker(s.admit.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample()
		}
	}
}

// admitLoad is the team set's AdmitLoad: no new team is loaded over the high watermark.
func (s *Server) admitLoad(string) error {
	if s.admit.over(levelHigh) {
		s.metrics.shed.WithLabelValues("team_load").Inc()
		return ErrOverloaded
	}
	return nil
}

// admitFuzzy is the indexes' AdmitFuzzy: the bleve fallback (a transient of tens of MiB on a
// big team) is not built while critical, nor during a surge of team loads; a later search
// asks again.
func (s *Server) admitFuzzy() bool {
	if s.admit.over(levelCritical) {
		s.metrics.shed.WithLabelValues("fuzzy_index").Inc()
		return false
	}
	if s.surge.active(time.Now()) {
		s.metrics.shed.WithLabelValues("fuzzy_index_surge").Inc()
		return false
	}
	return true
}

// overloadedError is what a refused connection or request is told: come back after a jittered
// while, so that the refused do not return together.
func (s *Server) overloadedError(what string) *Error {
	return &Error{Code: CodeOverloaded, Message: what, RetryAfterMS: s.jitter(2 * time.Second).Milliseconds()}
}
