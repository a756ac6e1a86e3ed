package proxy

import (
	"math"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/token"
)

func paceServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	keys, err := token.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tokens = keys
	cfg.Watch = noWatch{} // the tests hand announcements to observe themselves
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type noWatch struct{}

func (noWatch) WatchEdges(func(ring.Announcement)) (func(), error) { return func() {}, nil }

func announce(lagMS float64) ring.Announcement {
	return ring.Announcement{Node: "edge-1", Addr: "127.0.0.1:1", State: ring.EdgeServing, Admitting: true,
		IntervalMS: 1000, LagP99MS: lagMS}
}

// TestEdgePaceFollowsAnnouncedLag: the pace of new connections to an edge halves at each
// announcement of a lag over the target, never below the floor, and climbs back by a tenth of
// EdgeRate at each announcement at or under it, never above EdgeRate; the pacer admits at the
// pace, and the gauge says it.
func TestEdgePaceFollowsAnnouncedLag(t *testing.T) {
	s := paceServer(t, Config{EdgeRate: 100, EdgeBurst: 1, EdgeLagTarget: 10 * time.Millisecond})
	steps := []struct {
		lagMS float64
		want  float64
	}{
		{50, 50}, {11, 100.0 / 3}, {900, 100.0 / 3}, // halved, then the floor (a third of EdgeRate)
		{10, 100.0/3 + 10}, {0, 100.0/3 + 20}, {3, 100.0/3 + 30}, // at or under the target: +10
		{3, 100.0/3 + 40}, {3, 100.0/3 + 50}, {3, 100.0/3 + 60}, {3, 100}, {3, 100}, // capped
		{25, 50},
	}
	for i, st := range steps {
		s.observe(announce(st.lagMS))
		p := s.edgePacer("edge-1")
		p.mu.Lock()
		got := p.rate
		p.mu.Unlock()
		if math.Abs(got-st.want) > 1e-9 {
			t.Fatalf("step %d (lag %v ms): pace %v, want %v", i, st.lagMS, got, st.want)
		}
		var m dto.Metric
		if err := s.metrics.edgePace.WithLabelValues("edge-1").Write(&m); err != nil {
			t.Fatal(err)
		}
		if g := m.GetGauge().GetValue(); math.Abs(g-st.want) > 1e-9 {
			t.Fatalf("step %d: gauge %v, want %v", i, g, st.want)
		}
	}
	// At 50/s with a burst of 1 the pacer admits one connection and books the next 20 ms on.
	p := s.edgePacer("edge-1")
	now := bucket.Now() + int64(time.Hour) // past anything booked above
	if ok, _ := p.Admit(now); !ok {
		t.Fatal("the first connection at the new pace was refused")
	}
	ok, after := p.Admit(now)
	if ok || after < 20*time.Millisecond || after > 41*time.Millisecond {
		t.Fatalf("the second connection at once: admitted %v, come back after %v; want refused, 20–40 ms", ok, after)
	}
}

// TestEdgePaceFixed: a negative target keeps the configured pace whatever the edge says; an
// announcement no watcher should trust (a NaN lag), or one the membership did not take,
// changes nothing; a floor is never over the rate.
func TestEdgePaceFixed(t *testing.T) {
	s := paceServer(t, Config{EdgeRate: 100, EdgeLagTarget: -1})
	s.observe(announce(500))
	if r := s.edgePacer("edge-1").rate; r != 100 {
		t.Fatalf("pace %v with the target off, want 100", r)
	}
	s = paceServer(t, Config{EdgeRate: 100})
	s.observe(announce(50))
	s.observe(announce(math.NaN()))
	if r := s.edgePacer("edge-1").rate; r != 50 {
		t.Fatalf("pace %v after an invalid announcement, want the 50 it had", r)
	}
	// A second edge announcing under the kept edge's name speaks for no edge.
	other := announce(1)
	other.Addr, other.Started = "127.0.0.1:2", time.Unix(1, 0)
	s.observe(other)
	if r := s.edgePacer("edge-1").rate; r != 50 {
		t.Fatalf("pace %v after an announcement from another edge under the same name, want 50", r)
	}
	// A floor over the cap is the cap: lag never raises the pace.
	s = paceServer(t, Config{EdgeRate: 100, EdgeRateFloor: 200})
	s.observe(announce(50))
	if r := s.edgePacer("edge-1").rate; r != 100 {
		t.Fatalf("pace %v with a floor of 200 over a rate of 100, want 100", r)
	}
	if err := (&ring.Announcement{Node: "a", Addr: "b", State: ring.EdgeServing, IntervalMS: 1, LagP99MS: math.Inf(1)}).Validate(); err == nil {
		t.Fatal("an infinite lag validated")
	}
}

// TestPacesOfLostEdgesForgotten: when an edge is no longer a member its pace and its gauge
// series go, and the edges still there keep theirs.
func TestPacesOfLostEdgesForgotten(t *testing.T) {
	s := paceServer(t, Config{EdgeRate: 100})
	a, b := announce(50), announce(50)
	b.Node, b.Addr = "edge-2", "127.0.0.1:2"
	s.observe(a)
	s.observe(b)
	s.forgetPaces(&ring.View{Edges: map[string]ring.Announcement{"edge-1": a}})
	if _, ok := s.edgePace.Load("edge-2"); ok {
		t.Fatal("the lost edge's pace was kept")
	}
	if p, ok := s.edgePace.Load("edge-1"); !ok || p.(*edgePace).rate != 50 {
		t.Fatal("the remaining edge lost its pace")
	}
	families, err := s.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, f := range families {
		if f.GetName() == "weft_proxy_edge_pace" {
			for _, m := range f.GetMetric() {
				series = append(series, m.GetLabel()[0].GetValue())
			}
		}
	}
	if len(series) != 1 || series[0] != "edge-1" {
		t.Fatalf("weft_proxy_edge_pace series %v, want only edge-1", series)
	}
}

// TestEdgePaceStartsAtAnnouncedRate (issue 20): an edge that announces the connections a
// second it takes gets them from its first announcement, not after a climb from EdgeRate; its
// lag halves the pace and the pace climbs back by a tenth of the announced rate, up to it; an
// edge that announces none gets EdgeRate.
func TestEdgePaceStartsAtAnnouncedRate(t *testing.T) {
	s := paceServer(t, Config{EdgeRate: 150, EdgeBurst: 1, EdgeLagTarget: 10 * time.Millisecond})
	rate := func(edge string) float64 {
		p := s.edgePacer(edge)
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.rate
	}
	a := announce(1)
	a.AcceptRate = 1000
	for i, st := range []struct{ lagMS, want float64 }{{1, 1000}, {40, 500}, {40, 250}, {1, 350}, {1, 450}} {
		a.LagP99MS = st.lagMS
		s.observe(a)
		if got := rate("edge-1"); math.Abs(got-st.want) > 1e-9 {
			t.Fatalf("step %d (lag %v ms): pace %v, want %v", i, st.lagMS, got, st.want)
		}
	}
	quiet := announce(1)
	quiet.Node, quiet.Addr = "edge-2", "127.0.0.1:2"
	s.observe(quiet)
	if got := rate("edge-2"); got != 150 {
		t.Fatalf("an edge announcing no accept rate: pace %v, want EdgeRate 150", got)
	}
	bad := announce(1)
	bad.AcceptRate = math.Inf(1)
	if bad.Validate() == nil {
		t.Fatal("an infinite accept rate validated")
	}
}

// TestEdgePaceTakesTheAnnouncedBurst: an edge that announces the burst it takes above its
// rate (its --connect-burst) gets that many new connections at once from the proxy, so that
// the clients of a lost edge reach an idle survivor without waiting for the rate; an edge that
// announces no rate gets EdgeBurst, and a negative burst does not validate.
func TestEdgePaceTakesTheAnnouncedBurst(t *testing.T) {
	s := paceServer(t, Config{EdgeRate: 150, EdgeBurst: 3, EdgeLagTarget: 10 * time.Millisecond})
	admitted := func(edge string) int {
		p := s.edgePacer(edge)
		now := bucket.Now() // one instant: only the burst gets through
		n := 0
		for range 10_000 {
			if ok, _ := p.Admit(now); !ok {
				break
			}
			n++
		}
		return n
	}
	a := announce(1)
	a.AcceptRate, a.AcceptBurst = 1000, 500
	s.observe(a)
	if n := admitted("edge-1"); n != 500 {
		t.Fatalf("an edge announcing a burst of 500: %d admitted at once", n)
	}
	quiet := announce(1)
	quiet.Node, quiet.Addr = "edge-2", "127.0.0.1:2"
	s.observe(quiet)
	if n := admitted("edge-2"); n != 3 {
		t.Fatalf("an edge announcing no rate: %d admitted at once, want EdgeBurst 3", n)
	}
	bad := announce(1)
	bad.AcceptBurst = -1
	if bad.Validate() == nil {
		t.Fatal("a negative accept burst validated")
	}
}
