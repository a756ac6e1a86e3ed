package ring

// Two edges announcing under one name: the ring does not flap between them. Each test's comment
// describes the bug it was written for; the test fails if that bug comes back.

import (
	"testing"
	"time"
)

// TestDuplicateNodeName: two edges announce under one name (`weft edge` defaults --node to
// edge-1, so two edges started without --node do this). Observe takes every announcement as
// the same edge: its address flips between the two on every announcement, and when one of
// them drains the ring flaps on every announcement (each flap a ring change that makes every
// edge run a rebalance). Nothing reports the conflict.
func TestDuplicateNodeName(t *testing.T) {
	changes := 0
	m := NewMembership(MembershipConfig{OnChange: func(_, _ *View) { changes++ }})
	t1, t2 := time.Unix(1000, 0), time.Unix(2000, 0)
	a := Announcement{Node: "edge-1", Addr: "10.0.0.1:8080", State: EdgeServing, IntervalMS: 1000, Started: t1}
	b := Announcement{Node: "edge-1", Addr: "10.0.0.2:8080", State: EdgeDraining, IntervalMS: 1000, Started: t2}
	var addrs []string
	for range 5 {
		m.Observe(a)
		addrs = append(addrs, m.View().Addr("edge-1"))
		m.Observe(b)
		addrs = append(addrs, m.View().Addr("edge-1"))
	}
	t.Logf("addresses routed to: %v; ring changes: %d", addrs, changes)
	if changes > 1 || addrs[0] != addrs[len(addrs)-1] {
		t.Fatalf("two edges under one name: the address flipped %v and the ring changed %d times in 10 announcements", addrs, changes)
	}
}
