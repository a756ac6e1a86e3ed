package edge

import (
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/ring"
)

// TestVisitorsHomeGeneration: a region's generation, which sends its visitors home, rises
// when an edge appears in its serving set (a join, a return, a new life), and not when its
// edges leave: the dead edges of a region expiring one by one in this edge's view must not
// send visitors back to the survivors, dead too.
func TestVisitorsHomeGeneration(t *testing.T) {
	var vs visitors
	vs.init()
	m := ring.NewMembership(ring.MembershipConfig{Region: "us", DownFor: time.Hour})
	life := time.Unix(1, 0)
	eu := func(node string, started time.Time) {
		m.Observe(ring.Announcement{Node: node, Addr: "127.0.0.1:1", State: ring.EdgeServing, Region: "eu",
			IntervalMS: 100, Started: started})
		vs.noteRegions(m.View())
	}
	gen := func() uint64 { return vs.gen["eu"] }
	eu("eu-1", life)
	eu("eu-2", life)
	g := gen()
	if g == 0 {
		t.Fatal("edges joining did not raise the generation")
	}
	// The visitor arrives now, at g; eu's edges die and leave this view one by one.
	m.MarkDown("eu-1")
	vs.noteRegions(m.View())
	m.MarkDown("eu-2")
	vs.noteRegions(m.View())
	if gen() != g {
		t.Fatalf("edges leaving raised the generation %d → %d", g, gen())
	}
	if _, ok := m.View().Serving["eu"]; ok {
		t.Fatal("eu still serves")
	}
	// eu-1 comes back in a new life: a new generation.
	eu("eu-1", life.Add(time.Second))
	if gen() == g {
		t.Fatal("an edge's new life did not raise the generation")
	}
	// A restart that keeps the serving set (seen at a tick, no ring change) counts too.
	g = gen()
	eu("eu-1", life.Add(2*time.Second))
	if gen() == g {
		t.Fatal("a restart within the set did not raise the generation")
	}
	// The same lives announcing again change nothing.
	g = gen()
	eu("eu-1", life.Add(2*time.Second))
	if gen() != g {
		t.Fatal("an edge announcing again raised the generation")
	}
}
