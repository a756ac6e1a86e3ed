package edge

import (
	"context"
	"errors"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/protocol"
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

// RuntimeGauge reads the memory the Go runtime holds from the OS and has not returned: what
// GOMEMLIMIT (set to the same budget) limits, and close to the process's RSS. It counts the
// heap's objects, live or not yet swept (they follow allocation between collections, where
// the live heap of the last GC would lag behind a storm), and also goroutine stacks and the
// runtime's own structures: with two goroutines per WebSocket session, stacks alone were a
// third of an edge's memory in the storm (55 MB of 250 at 7,800 sessions), which a gauge of
// heap objects alone did not see. It is a cheap read (no stop-the-world, unlike
// runtime.ReadMemStats).
type RuntimeGauge struct{}

var gaugeMetrics = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

func (RuntimeGauge) HeapBytes() uint64 {
	s := make([]rtmetrics.Sample, len(gaugeMetrics))
	for i, name := range gaugeMetrics {
		s[i].Name = name
	}
	rtmetrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
	}
	total, released := s[0].Value.Uint64(), s[1].Value.Uint64()
	if released > total {
		return 0
	}
	return total - released
}

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
	heap := a.cfg.Gauge.HeapBytes()
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
func (s *Server) overloadedError(what string) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeOverloaded, Message: what, RetryAfterMS: s.jitter(2 * time.Second).Milliseconds()}
}
