package reference

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/weft-edge/weft/origin"
)

// teamState is one team's current state: the World's base plus the overlay of everything
// changed since the Server started. Each team has its own locks, so teams never contend.
type teamState struct {
	w   *World
	idx int
	id  string

	// pubMu serializes the changes of the team with the publishing of their events, so events
	// are applied, numbered and published in seq order. Lock order: pubMu, then mu.
	pubMu   sync.Mutex
	seq     int64           // last seq assigned; guarded by pubMu
	pending []*origin.Event // assigned but not yet published, in seq order; guarded by pubMu
	failing bool            // the last publish failed; guarded by pubMu
	lastTS  int64           // last message ts, in microseconds; guarded by pubMu

	// published is the last seq whose publish succeeded (written under pubMu). Every change up
	// to it is already applied, which is what makes "a listing read after seq S reflects every
	// event <= S" true for readers that take only mu.
	published atomic.Int64

	// mu guards the overlay below. Readers hold it shared for one page at a time; changes hold
	// it exclusively while they apply, never while they publish.
	mu       sync.RWMutex
	team     origin.Team
	users    map[int32]*origin.User    // users changed since start
	channels map[int32]*origin.Channel // base channels changed since start and created channels; MemberCount unused
	deleted  map[int32]int64           // deleted channels and the version of their deletion
	counts   []int32                   // member count of every channel, base and created
	members  map[int32][]memRow        // per user, the memberships changed since start, by channel

	// names maps live channel names to indices, for the uniqueness check of creations and
	// renames. Only changes use it, so pubMu guards it. nil until first needed.
	names map[string]int32
}

// memRow is one membership of a user: the channel, whether the user is in it, and its version.
// In teamState.members it overrides the base; a row with member false records a leave.
type memRow struct {
	ch      int32
	member  bool
	updated int64
}

func newTeamState(w *World, t int) *teamState {
	return &teamState{
		w: w, idx: t, id: w.teams[t].id,
		team:     w.baseTeam(t),
		users:    make(map[int32]*origin.User),
		channels: make(map[int32]*origin.Channel),
		deleted:  make(map[int32]int64),
		counts:   slices.Clone(w.teams[t].counts),
		members:  make(map[int32][]memRow),
	}
}

// The readers below expect mu held, shared or exclusive.

func (st *teamState) hasUser(u int) bool { return u >= 0 && u < st.w.size.Users }

// user returns the current state of user u (hasUser(u) must hold).
func (st *teamState) user(u int) origin.User {
	if ov, ok := st.users[int32(u)]; ok {
		return *ov
	}
	return st.w.baseUser(st.idx, u)
}

// channel returns the current state of channel c; false when it never existed or was deleted.
func (st *teamState) channel(c int) (origin.Channel, bool) {
	if c < 0 || c >= len(st.counts) {
		return origin.Channel{}, false
	}
	if _, gone := st.deleted[int32(c)]; gone {
		return origin.Channel{}, false
	}
	var ch origin.Channel
	if ov, ok := st.channels[int32(c)]; ok {
		ch = *ov
	} else {
		ch = st.w.baseChannel(st.idx, c)
	}
	ch.MemberCount = int(st.counts[c])
	return ch, true
}

// currentTeam returns the team object; channel_count follows creations and deletions.
func (st *teamState) currentTeam() origin.Team {
	t := st.team
	t.ChannelCount = len(st.counts) - len(st.deleted)
	return t
}

// userChannels returns the current memberships of user u ordered by channel, deleted channels
// left out, in dst (reused). g supplies the base draw and must not be shared.
func (st *teamState) userChannels(g *memberGen, u int, dst []memRow) []memRow {
	g.base = st.w.baseChannelsInto(g, st.idx, u, g.base)
	ov := st.members[int32(u)]
	dst = dst[:0]
	i, j := 0, 0
	for i < len(g.base) || j < len(ov) {
		var row memRow
		switch {
		case j == len(ov) || (i < len(g.base) && g.base[i] < ov[j].ch):
			row = memRow{ch: g.base[i], member: true, updated: 1}
			i++
		case i == len(g.base) || ov[j].ch < g.base[i]:
			row = ov[j]
			j++
		default: // the overlay overrides the base
			row = ov[j]
			i++
			j++
		}
		if !row.member {
			continue
		}
		if _, gone := st.deleted[row.ch]; gone {
			continue
		}
		dst = append(dst, row)
	}
	return dst
}

// membership returns the current row of (u, c) and whether u is a member of c. It ignores
// whether c is deleted.
func (st *teamState) membership(g *memberGen, u, c int) (memRow, bool) {
	ov := st.members[int32(u)]
	if i, ok := slices.BinarySearchFunc(ov, int32(c), func(r memRow, c int32) int { return int(r.ch - c) }); ok {
		return ov[i], ov[i].member
	}
	g.base = st.w.baseChannelsInto(g, st.idx, u, g.base)
	if _, ok := slices.BinarySearch(g.base, int32(c)); ok {
		return memRow{ch: int32(c), member: true, updated: 1}, true
	}
	return memRow{}, false
}

// The writers below expect mu held exclusively.

// setMembership records that u joined (member) or left channel c at version v.
func (st *teamState) setMembership(u, c int, member bool, v int64) {
	ov := st.members[int32(u)]
	row := memRow{ch: int32(c), member: member, updated: v}
	i, ok := slices.BinarySearchFunc(ov, int32(c), func(r memRow, c int32) int { return int(r.ch - c) })
	if ok {
		ov[i] = row
	} else {
		ov = slices.Insert(ov, i, row)
	}
	st.members[int32(u)] = ov
	if member {
		st.counts[c]++
	} else {
		st.counts[c]--
	}
}

// channelNames returns the name index, building it on first use: a one-off walk of the
// channels (36,000 names at giant take milliseconds) that start-up should not pay. The caller
// holds pubMu.
func (st *teamState) channelNames() map[string]int32 {
	if st.names == nil {
		st.names = make(map[string]int32, len(st.counts))
		for c := range st.counts {
			if ch, ok := st.channel(c); ok {
				st.names[ch.Name] = int32(c)
			}
		}
	}
	return st.names
}
