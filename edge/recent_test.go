package edge

import (
	"testing"

	"github.com/weft-edge/weft/origin"
)

func evs(from, to int64) []*origin.Event {
	var out []*origin.Event
	for s := from; s <= to; s++ {
		out = append(out, &origin.Event{Seq: s})
	}
	return out
}

func seqsOf(es []*origin.Event) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// TestRecentEvents: appends keep a contiguous window of the latest events, at least the limit
// once that many came and never twice it; a fill from the stream goes in front only when it
// reaches what is held; a gap starts over.
func TestRecentEvents(t *testing.T) {
	var r recentEvents
	for i, e := range evs(5, 20) {
		r.add(e, 8, 1<<30)
		if n := len(r.evs); n >= 16 || (i+1 >= 8 && n < 8) || r.lo+int64(n)-1 != e.Seq {
			t.Fatalf("after seq %d: window %d+%d, want the latest 8 to 15", e.Seq, r.lo, n)
		}
	}
	if r.lo != 13 || len(r.evs) != 8 {
		t.Fatalf("window %d+%d, want 13..20", r.lo, len(r.evs))
	}
	if got, ok := r.rangeOf(14, 20); !ok || len(got) != 6 || got[0].Seq != 15 {
		t.Fatalf("rangeOf(14,20) = %v %v", seqsOf(got), ok)
	}
	if _, ok := r.rangeOf(11, 20); ok {
		t.Fatal("a range older than the window was answered")
	}
	if _, ok := r.rangeOf(14, 21); ok {
		t.Fatal("a range newer than the window was answered")
	}
	if got, ok := r.rangeOf(20, 20); !ok || len(got) != 0 {
		t.Fatal("an empty range must be answered, empty")
	}
	// A fill that does not reach the window is dropped; one that does goes in front, within
	// the limit's room (none left here).
	r.fill(evs(5, 10), 8, 1<<30)
	if r.lo != 13 {
		t.Fatalf("a fill with a hole was taken: lo %d", r.lo)
	}
	r.fill(evs(5, 18), 12, 1<<30)
	if r.lo != 9 || len(r.evs) != 12 {
		t.Fatalf("after the fill: %d+%d, want 9..20", r.lo, len(r.evs))
	}
	if got, ok := r.rangeOf(8, 20); !ok || len(got) != 12 || got[0].Seq != 9 || got[11].Seq != 20 {
		t.Fatalf("rangeOf(8,20) after fill = %v %v", seqsOf(got), ok)
	}
	// A gap (after a reload) starts over.
	r.add(&origin.Event{Seq: 30}, 12, 1<<30)
	if r.lo != 30 || len(r.evs) != 1 {
		t.Fatalf("after a gap: %d+%d", r.lo, len(r.evs))
	}
	var empty recentEvents
	empty.fill(evs(3, 7), 8, 1<<30)
	if got, ok := empty.rangeOf(2, 7); !ok || len(got) != 5 {
		t.Fatalf("fill into an empty window: %v %v", seqsOf(got), ok)
	}
}

// sized are events from..to of size bytes each on the bus.
func sized(from, to int64, size int) []*origin.Event {
	out := evs(from, to)
	for _, e := range out {
		e.Size = size
	}
	return out
}

// TestRecentEventsBoundedByBytes: large events are held within twice the byte bound and trimmed
// to it (a burst of 48 KiB events does not hold the count limit's worth), the latest one is
// kept whatever its size, and a fill takes only the newest events that fit.
func TestRecentEventsBoundedByBytes(t *testing.T) {
	const size, limitBytes = 48 << 10, 1 << 20 // about 21 events of 48 KiB fit
	fits := limitBytes / eventCost(&origin.Event{Size: size})
	var r recentEvents
	for _, e := range sized(1, 200, size) {
		r.add(e, 512, limitBytes)
		if r.bytes > 2*limitBytes {
			t.Fatalf("after seq %d: %d bytes held, bound %d (twice it at most)", e.Seq, r.bytes, limitBytes)
		}
		want := 0
		for _, h := range r.evs {
			want += eventCost(h)
		}
		if r.bytes != want {
			t.Fatalf("after seq %d: bytes %d, the events held cost %d", e.Seq, r.bytes, want)
		}
		if r.lo+int64(len(r.evs))-1 != e.Seq {
			t.Fatalf("after seq %d: window %d+%d does not end at it", e.Seq, r.lo, len(r.evs))
		}
	}
	if len(r.evs) < fits || len(r.evs) > 2*fits+1 {
		t.Fatalf("%d events of %d bytes held, want %d to %d", len(r.evs), size, fits, 2*fits)
	}
	// One event over the whole bound is still kept: a resume right behind it replays from memory.
	var big recentEvents
	big.add(sized(7, 7, 2*limitBytes)[0], 512, limitBytes)
	big.add(sized(8, 8, 3*limitBytes)[0], 512, limitBytes)
	if big.lo != 8 || len(big.evs) != 1 {
		t.Fatalf("window %d+%d, want only the latest (8)", big.lo, len(big.evs))
	}
	// A fill in front takes the newest that fit in the room the bytes leave.
	var f recentEvents
	for _, e := range sized(100, 104, size) {
		f.add(e, 512, limitBytes)
	}
	f.fill(sized(1, 99, size), 512, limitBytes)
	if f.bytes > limitBytes || f.lo+int64(len(f.evs))-1 != 104 || len(f.evs) != fits {
		t.Fatalf("after the fill: %d+%d, %d bytes; want the newest %d within %d bytes", f.lo, len(f.evs), f.bytes, fits, limitBytes)
	}
}
