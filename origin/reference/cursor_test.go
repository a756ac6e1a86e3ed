package reference

import (
	"slices"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []struct {
		kind byte
		pos  []int
	}{{cursorUsers, []int{0}}, {cursorChannels, []int{maxObjects - 1}}, {cursorMemberships, []int{365_999, 35_999}}} {
		s := encodeCursor(c.kind, c.pos...)
		got, err := decodeCursor(c.kind, len(c.pos), s)
		if err != nil || !slices.Equal(got, c.pos) {
			t.Errorf("%c %v → %q → %v, %v", c.kind, c.pos, s, got, err)
		}
		other := byte(cursorUsers)
		if c.kind == cursorUsers {
			other = cursorChannels
		}
		if _, err := decodeCursor(other, len(c.pos), s); err == nil {
			t.Errorf("a %c cursor decodes as %c", c.kind, other)
		}
	}
	if pos, err := decodeCursor(cursorMemberships, 2, ""); err != nil || !slices.Equal(pos, []int{0, 0}) {
		t.Fatalf("empty cursor: %v, %v", pos, err)
	}
}

// FuzzDecodeCursor feeds arbitrary strings to the cursor decoder: it refuses them or returns
// positions that encode back to a cursor decoding to the same positions; it never panics.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", encodeCursor(cursorUsers, 42), encodeCursor(cursorMemberships, 7, 3),
		encodeCursor(cursorUsers, 42, 99), encodeCursor(cursorMemberships, 7, 3, 120),
		"bTEyLjM0", "dS0x", "!!", "dQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []struct {
			kind byte
			n    int
		}{{cursorUsers, 1}, {cursorChannels, 1}, {cursorMemberships, 2}} {
			pos, err := decodeCursor(k.kind, k.n, s)
			if err != nil {
				continue
			}
			if len(pos) != k.n {
				t.Fatalf("%q: %d positions, want %d", s, len(pos), k.n)
			}
			for _, p := range pos {
				if p < 0 || p >= 1<<31 {
					t.Fatalf("%q: position %d out of range", s, p)
				}
			}
			again, err := decodeCursor(k.kind, k.n, encodeCursor(k.kind, pos...))
			if err != nil || !slices.Equal(again, pos) {
				t.Fatalf("%q → %v → %v, %v", s, pos, again, err)
			}
		}
		// A partition's cursor: the positions and the partition's end.
		for _, k := range []struct {
			kind byte
			n    int
		}{{cursorUsers, 1}, {cursorChannels, 1}, {cursorMemberships, 2}} {
			pos, end, err := decodeCursorEnd(k.kind, k.n, s)
			if err != nil {
				continue
			}
			if len(pos) != k.n || end < -1 || end >= 1<<31 {
				t.Fatalf("%q: %v end %d", s, pos, end)
			}
			enc := encodeCursor(k.kind, pos...)
			if end >= 0 {
				enc = encodeCursor(k.kind, append(pos, end)...)
			}
			again, end2, err := decodeCursorEnd(k.kind, k.n, enc)
			if err != nil || !slices.Equal(again, pos) || end2 != end {
				t.Fatalf("%q → %v %d → %v %d, %v", s, pos, end, again, end2, err)
			}
		}
	})
}
