package reference

import (
	"slices"
	"strconv"
)

// The page writers append array elements (with a leading comma when comma is set, so pages
// can be stitched into one snapshot) and return where the next page starts. Each takes the
// team's read lock for its own page only: a change waits for at most one page, and a listing
// read after seq S reflects every event <= S because those were applied before S was published.

//
// Each writer stops at end, the index where its partition ends (allUsers, allChannels: the
// whole listing). A partition is a range of indices, so partitions never overlap and cover
// the listing between them; a channel created during a walk lands in the last one.

// allUsers and allChannels are the end of the whole listing (above any index, below 2^31).
const (
	allUsers    = maxObjects
	allChannels = maxObjects
)

// appendUsers writes up to limit users from index from, below end. next is -1 after the last.
func (st *teamState) appendUsers(b []byte, from, end, limit int, comma bool) (_ []byte, next int) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	end = min(end, st.w.size.Users)
	stop := min(from+limit, end)
	for u := from; u < stop; u++ {
		if comma || u > from {
			b = append(b, ',')
		}
		user := st.user(u)
		b = appendUser(b, &user)
	}
	if stop >= end {
		return b, -1
	}
	return b, stop
}

// appendChannels writes up to limit live channels from index from, below end. next is -1 at
// the end.
func (st *teamState) appendChannels(b []byte, from, end, limit int, comma bool) (_ []byte, next int) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	end = min(end, len(st.counts))
	n, c := 0, from
	for ; c < end && n < limit; c++ {
		ch, ok := st.channel(c)
		if !ok {
			continue
		}
		if comma || n > 0 {
			b = append(b, ',')
		}
		b = appendChannel(b, &ch)
		n++
	}
	if c >= end {
		return b, -1
	}
	return b, c
}

// appendMemberships writes up to limit membership rows, ordered by user then channel, from
// the row of user u whose channel index is at least c, of users below endU. It returns the
// position of the next row, with nu == -1 after the last one.
func (st *teamState) appendMemberships(b []byte, u, c, endU, limit int, comma bool) (_ []byte, nu, nc int) {
	g := st.w.getGen()
	defer st.w.gens.Put(g)
	st.mu.RLock()
	defer st.mu.RUnlock()
	n := 0
	for endU = min(endU, st.w.size.Users); u < endU; u, c = u+1, 0 {
		g.rows = st.userChannels(g, u, g.rows)
		i, _ := slices.BinarySearchFunc(g.rows, int32(c), func(r memRow, c int32) int { return int(r.ch - c) })
		for _, row := range g.rows[i:] {
			if n == limit {
				return b, u, int(row.ch)
			}
			if comma || n > 0 {
				b = append(b, ',')
			}
			b = appendMembership(b, st.idx, u, row)
			n++
		}
	}
	return b, -1, 0
}

// appendTeamInfoOpen writes {"team":…,"seq":…} without the closing brace, so the snapshot can go on.
func (st *teamState) appendTeamInfoOpen(b []byte) []byte {
	// Read seq first: the team object read after it is at least as new.
	seq := st.published.Load()
	st.mu.RLock()
	t := st.currentTeam()
	st.mu.RUnlock()
	b = append(b, `{"team":`...)
	b = appendTeam(b, &t)
	b = append(b, `,"seq":`...)
	return strconv.AppendInt(b, seq, 10)
}
