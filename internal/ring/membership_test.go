package ring

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ann(node, state string) Announcement {
	return Announcement{Node: node, Addr: "127.0.0.1:1", State: state, IntervalMS: 100, Admitting: true,
		Started: time.Unix(1, 0)}
}

func TestMembershipJoinLeaveDrainDown(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	var changes int
	m := NewMembership(MembershipConfig{Now: clk.now, DownFor: time.Second, MinTTL: 500 * time.Millisecond,
		OnChange: func(_, _ *View) { changes++ }})
	if m.Owner("T1") != "" {
		t.Fatal("no edges, no owner")
	}
	for _, n := range []string{"a", "b", "c"} {
		m.Observe(ann(n, EdgeServing))
	}
	if got := m.View().Ring.Key(); got != "a,b,c" || changes != 3 {
		t.Fatalf("ring %q after %d changes", got, changes)
	}
	m.Observe(ann("a", EdgeServing)) // same set: no change
	if changes != 3 {
		t.Fatalf("a repeated announcement changed the ring (%d changes)", changes)
	}
	m.Observe(ann("b", EdgeDraining))
	if got := m.View().Ring.Key(); got != "a,c" {
		t.Fatalf("a draining edge stays in the ring: %q", got)
	}
	if _, ok := m.View().Edges["b"]; !ok {
		t.Fatal("a draining edge is still live")
	}
	m.MarkDown("c")
	if got := m.View().Ring.Key(); got != "a" {
		t.Fatalf("marked down edge in ring: %q", got)
	}
	clk.add(400 * time.Millisecond)
	m.Observe(ann("a", EdgeServing))
	m.Observe(ann("c", EdgeServing)) // same life: still down
	m.Expire()
	if got := m.View().Ring.Key(); got != "a" {
		t.Fatalf("down mark lifted early: %q", got)
	}
	clk.add(700 * time.Millisecond) // DownFor passed; b silent 1.1s > TTL
	m.Observe(ann("a", EdgeServing))
	m.Observe(ann("c", EdgeServing))
	m.Expire()
	if got := m.View().Ring.Key(); got != "a,c" {
		t.Fatalf("after expiry and down lifted: %q", got)
	}
	if _, ok := m.View().Edges["b"]; ok {
		t.Fatal("a silent edge is still live")
	}
	// A restarted edge (new Started) is up again at once even if marked down.
	m.MarkDown("c")
	restarted := ann("c", EdgeServing)
	restarted.Started = time.Unix(2, 0)
	m.Observe(restarted)
	if got := m.View().Ring.Key(); got != "a,c" {
		t.Fatalf("restarted edge not back: %q", got)
	}
}

func TestMembershipStaticAndExcluding(t *testing.T) {
	m := NewMembership(MembershipConfig{Static: []Announcement{{Node: "x", Addr: "127.0.0.1:1"}, {Node: "y", Addr: "127.0.0.1:2"}}})
	m.Expire()
	if got := m.View().Ring.Key(); got != "x,y" {
		t.Fatalf("static ring %q", got)
	}
	d := ann("x", EdgeDraining)
	m.Observe(d)
	if got := m.View().Ring.Key(); got != "x,y" {
		t.Fatalf("a static edge left the ring: %q", got)
	}
	for _, k := range teamKeys(1000) {
		if o := m.OwnerExcluding(k, []string{"x", "nope"}); o != "y" {
			t.Fatalf("excluding x, %s owned by %q", k, o)
		}
		if m.OwnerExcluding(k, nil) != m.Owner(k) {
			t.Fatal("no exclusion must be the plain owner")
		}
	}
}

// TestMembershipsAgree: two watchers that saw the same announcements in different orders own
// every team alike.
func TestMembershipsAgree(t *testing.T) {
	a, b := NewMembership(MembershipConfig{}), NewMembership(MembershipConfig{})
	names := nodes(7)
	for i := range names {
		a.Observe(ann(names[i], EdgeServing))
		b.Observe(ann(names[len(names)-1-i], EdgeServing))
	}
	for _, k := range teamKeys(20000) {
		if a.Owner(k) != b.Owner(k) {
			t.Fatalf("%s: %s vs %s", k, a.Owner(k), b.Owner(k))
		}
	}
}

func annIn(node, region string) Announcement {
	a := ann(node, EdgeServing)
	a.Region = region
	return a
}

// TestMembershipRegions: a watcher's ring holds the serving edges of its own region only; the
// other regions' edges are members, known by region, and their rings are built on demand and
// kept while their edges do not change. A change in any region is a new version.
func TestMembershipRegions(t *testing.T) {
	var changes []*View
	m := NewMembership(MembershipConfig{Region: "eu", OnChange: func(_, v *View) { changes = append(changes, v) }})
	for _, a := range []Announcement{annIn("eu-1", "eu"), annIn("eu-2", "eu"), annIn("us-1", "us"), annIn("us-2", "us"),
		annIn("old-1", "")} {
		m.Observe(a)
	}
	v := m.View()
	if v.Region != "eu" || v.Ring.Key() != "eu-1,eu-2" {
		t.Fatalf("own ring of %q: %q", v.Region, v.Ring.Key())
	}
	if len(v.Edges) != 5 || v.Edges["old-1"].Region != DefaultRegion || v.Edges["us-1"].Region != "us" {
		t.Fatalf("edges %+v", v.Edges)
	}
	if got := fmt.Sprint(v.Serving); got != "map[default:[old-1] eu:[eu-1 eu-2] us:[us-1 us-2]]" {
		t.Fatalf("serving %s", got)
	}
	us := v.RingOf("us")
	if us.Key() != "us-1,us-2" || v.RingOf("us") != us || v.RingOf("eu") != v.Ring || v.RingOf("").Key() != "old-1" ||
		v.RingOf("nowhere").Owner("T1") != "" {
		t.Fatalf("rings of regions: us %q eu %q default %q", us.Key(), v.RingOf("eu").Key(), v.RingOf("").Key())
	}
	for _, k := range teamKeys(500) {
		if o := m.Owner(k); o != "eu-1" && o != "eu-2" {
			t.Fatalf("%s owned by %q, not an edge of the own region", k, o)
		}
		if m.OwnerExcluding(k, []string{"us-1", "us-2"}) != m.Owner(k) {
			t.Fatal("excluding another region's edges changed an owner")
		}
	}

	// Another region's change is a new version, with the own ring unchanged.
	n := len(changes)
	m.Observe(annIn("us-3", "us"))
	v2 := m.View()
	if len(changes) != n+1 || v2.Version == v.Version || v2.Ring != v.Ring || v2.RingOf("us") == us ||
		v2.RingOf("us").Key() != "us-1,us-2,us-3" {
		t.Fatalf("us-3 joined: %d changes, version %d→%d, us ring %q", len(changes)-n, v.Version, v2.Version, v2.RingOf("us").Key())
	}
	if v.RingOf("us").Key() != "us-1,us-2" {
		t.Fatal("an old view's ring of another region changed")
	}
	m.Observe(annIn("us-3", "us")) // the same again: nothing changed
	if len(changes) != n+1 {
		t.Fatal("a repeated announcement of another region made a change")
	}
	// Marked down or draining, another region's edges leave its serving set; with none left
	// the region is absent.
	m.MarkDown("us-1")
	d := annIn("us-2", "us")
	d.State = EdgeDraining
	m.Observe(d)
	if got := m.View().Serving["us"]; fmt.Sprint(got) != "[us-3]" || fmt.Sprint(m.View().Down) != "[us-1]" {
		t.Fatalf("us serving %v down %v", got, m.View().Down)
	}
	d.Node = "us-3"
	m.Observe(d)
	if _, ok := m.View().Serving["us"]; ok || m.View().RingOf("us").Owner("T1") != "" {
		t.Fatalf("a region with no serving edge: %v", m.View().Serving)
	}
}

// TestMembershipDefaultRegion: a watcher given no region is in DefaultRegion, with the edges
// that name none (from before regions) or name it; static edges are in the watcher's region.
func TestMembershipDefaultRegion(t *testing.T) {
	m := NewMembership(MembershipConfig{})
	m.Observe(annIn("a", ""))
	m.Observe(annIn("b", DefaultRegion))
	m.Observe(annIn("c", "us"))
	if got := m.View().Ring.Key(); got != "a,b" || m.View().Region != DefaultRegion {
		t.Fatalf("default region ring %q", got)
	}
	s := NewMembership(MembershipConfig{Region: "eu", Static: []Announcement{{Node: "x", Addr: "127.0.0.1:1"}}})
	moved := annIn("x", "us") // an announcement about a static edge does not move it
	s.Observe(moved)
	if got := s.View().Ring.Key(); got != "x" || s.View().Edges["x"].Region != "eu" {
		t.Fatalf("static edge: ring %q, region %q", got, s.View().Edges["x"].Region)
	}
}
