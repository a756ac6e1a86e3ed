package edge

import (
	"net/http"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// fakeGauge is a heap reading the test sets.
type fakeGauge struct{ v atomic.Uint64 }

func (g *fakeGauge) HeapBytes() uint64 { return g.v.Load() }

// TestAdmissionWatermarks drives the heap gauge across every watermark of a 1,000-byte budget
// (high 700, critical 850, low 600) and checks what is admitted at each level: warm teams are
// served throughout; new connections, new team loads and /readyz are refused from high; idle
// teams are unloaded and the typo index is not built at critical; everything is admitted again
// only under low.
func TestAdmissionWatermarks(t *testing.T) {
	g := &fakeGauge{}
	h := newHarness(t, harnessOpts{edge: func(c *Config) {
		c.Admission = AdmissionConfig{Budget: 1000, Gauge: g, SampleEvery: time.Hour} // sampled by the test
	}})
	team, idle, cold := h.team, h.other, ""
	for _, id := range h.origin.TeamIDs() {
		if id != team && id != idle {
			cold = id
			break
		}
	}
	live := h.dial(team, h.user(team, 1), "")
	if st, _ := h.api(h.token(idle, h.user(idle, 1)), "ping", nil); st != 200 { // loads idle, then leaves it
		t.Fatalf("loading the idle team: %d", st)
	}
	set := func(heap uint64, want string) {
		t.Helper()
		g.v.Store(heap)
		h.edge.sample()
		if got := h.edge.Level(); got != want {
			t.Fatalf("heap %d: level %s, want %s", heap, got, want)
		}
	}
	refused := func(what string) {
		t.Helper()
		_, resp, err := h.dialRaw(h.token(team, h.user(team, 2)), "")
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: a new connection was not refused with 503 and Retry-After (err %v)", what, err)
		}
		if st, _ := h.get("/readyz"); st != http.StatusServiceUnavailable {
			t.Fatalf("%s: /readyz %d", what, st)
		}
		st, body := h.api(h.token(cold, h.user(cold, 1)), "ping", nil)
		if st != http.StatusServiceUnavailable || string(body["error"]) == "" {
			t.Fatalf("%s: a request for a team not loaded got %d %s", what, st, body["error"])
		}
	}
	served := func(what string) {
		t.Helper()
		if f := live.request("users.info", map[string]any{"users": []string{h.user(team, 3)}}); !f.OK {
			t.Fatalf("%s: a warm team's session was refused: %s", what, f.raw)
		}
		if st, _ := h.api(h.token(team, h.user(team, 4)), "ping", nil); st != 200 {
			t.Fatalf("%s: /api for a warm team: %d", what, st)
		}
	}

	set(650, "normal") // between low and high, from normal: stays normal
	served("normal")
	set(700, "high")
	refused("high")
	served("high")
	if h.edge.Teams().Lookup(idle) == nil {
		t.Fatal("high unloaded an idle team; only critical does")
	}
	set(900, "critical")
	refused("critical")
	served("critical")
	if h.edge.Teams().Lookup(idle) != nil {
		t.Fatal("critical left an idle team loaded")
	}
	if h.edge.Teams().Lookup(team) == nil {
		t.Fatal("critical unloaded a team with a live session")
	}
	if h.edge.admitFuzzy() {
		t.Fatal("critical admits a typo index build")
	}
	set(800, "high") // under critical, over high: eases to high
	set(650, "high") // between low and high: hysteresis keeps refusing
	refused("high, coming down")
	set(599, "normal")
	if st, _ := h.get("/readyz"); st != 200 {
		t.Fatalf("normal again: /readyz %d", st)
	}
	again := h.dial(cold, h.user(cold, 1), "") // a new connection and a new team load
	if again.hello.Team != cold {
		t.Fatal("normal again: new connection refused")
	}
	if n := h.metric(`weft_edge_admission_changes_total{level="critical"}`); n != 1 {
		t.Fatalf("critical entered %v times by the metric", n)
	}
}

// TestRuntimeGaugeCountsStacks: the runtime gauge sees goroutine stacks, not only heap objects
// (a WebSocket node holds two goroutines per session), and stays under what the process got
// from the OS.
func TestRuntimeGaugeCountsStacks(t *testing.T) {
	// With the collector off nothing in use is freed between the reads below, so what the
	// gauge reads last cannot be less than what was in use first.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	read := func(name string) uint64 {
		s := []rtmetrics.Sample{{Name: name}}
		rtmetrics.Read(s)
		return s[0].Value.Uint64()
	}
	objects, stacks := read("/memory/classes/heap/objects:bytes"), read("/memory/classes/heap/stacks:bytes")
	got := RuntimeGauge{}.HeapBytes()
	if got < objects+stacks {
		t.Fatalf("gauge %d < heap objects %d + stacks %d", got, objects, stacks)
	}
	if total := read("/memory/classes/total:bytes"); got > total {
		t.Fatalf("gauge %d > all the runtime mapped (%d)", got, total)
	}
}
