package edge

import (
	"testing"
	"time"
)

// TestPlanMovesSpread: a hand-over's goodbyes are planned at independent uniform times over the
// spread, in time order, so the moved clients reconnect to the new owner spread over the window.
// The plan is checked, not the times goodbyes arrive, which depend on the machine's load.
func TestPlanMovesSpread(t *testing.T) {
	const n, spread = 1000, 10 * time.Second
	sessions := make([]*session, n)
	for i := range sessions {
		sessions[i] = &session{id: string(rune('a' + i%26))}
	}
	moves := planMoves(sessions, spread)
	if len(moves) != n {
		t.Fatalf("%d moves planned for %d sessions", len(moves), n)
	}
	seen := map[*session]bool{}
	deciles := make([]int, 10)
	for i, m := range moves {
		if m.at < 0 || m.at >= spread {
			t.Fatalf("move %d at %v, outside [0, %v)", i, m.at, spread)
		}
		if i > 0 && m.at < moves[i-1].at {
			t.Fatalf("moves out of order: %v after %v", m.at, moves[i-1].at)
		}
		seen[m.ss] = true
		deciles[int(m.at*10/spread)]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct sessions in the plan, want %d", len(seen), n)
	}
	// 100 expected per tenth of the window; under 50 or over 150 has a probability far below
	// 1e-9 for a uniform draw, while a herd (everything at once) fills one tenth.
	for d, c := range deciles {
		if c < 50 || c > 150 {
			t.Fatalf("tenth %d of the window has %d of %d moves: %v", d, c, n, deciles)
		}
	}
	if got := planMoves(sessions[:1], 0); len(got) != 1 || got[0].at != 0 {
		t.Fatalf("a zero spread plans %+v, want one move at once", got)
	}
}
