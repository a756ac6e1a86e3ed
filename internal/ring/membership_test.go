package ring

import (
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
