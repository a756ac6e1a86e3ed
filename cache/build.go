package cache

import (
	"fmt"
	"slices"

	"github.com/weft-edge/weft/origin"
)

// builder assembles a fresh store from snapshot pages before anyone can see it. Users and
// channels go in as they come; memberships are collected as (channel, user) index pairs and
// laid out at the end in two arenas (channel → members, user → channels), which is both the
// fastest way to build 5M memberships and the most compact result.
type builder struct {
	s     *Store
	pairs []uint64
}

func newBuilder(team string) *builder { return &builder{s: newStore(team)} }

func (b *builder) users(us []origin.User) {
	b.s.ApplyUsers(us)
}

func (b *builder) channels(cs []origin.Channel) {
	b.s.ApplyChannels(cs)
}

func (b *builder) memberships(rows []origin.Membership) {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range rows {
		ci, ui := s.chanSlot(rows[i].Channel), s.userSlot(rows[i].User)
		b.pairs = append(b.pairs, memberKey(ci, ui))
	}
}

// finish lays out the memberships and stamps the team object and the seq the snapshot was read
// after. It fails if the snapshot is inconsistent in a way weft cannot serve.
func (b *builder) finish(info origin.Team, seq int64) (*Store, error) {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.userIdx) > 1<<31 || len(s.chanIdx) > 1<<31 {
		return nil, fmt.Errorf("cache: team %s too large to intern", s.team)
	}
	pairs := b.pairs
	b.pairs = nil
	slices.Sort(pairs)
	pairs = slices.Compact(pairs)

	// Channel side: pairs are sorted by channel then user, so each channel's members are one
	// sorted run. cap == len on each window makes a later insert copy only that list.
	members := make([]uint32, len(pairs))
	for i, p := range pairs {
		members[i] = uint32(p)
	}
	for start := 0; start < len(pairs); {
		ci := uint32(pairs[start] >> 32)
		end := start + 1
		for end < len(pairs) && uint32(pairs[end]>>32) == ci {
			end++
		}
		s.chans[ci].members = members[start:end:end]
		start = end
	}

	// User side: a counting sort by user; walking pairs in channel order fills each user's
	// window in ascending channel order, so it comes out sorted.
	offs := make([]int, len(s.users)+1)
	for _, p := range pairs {
		offs[uint32(p)+1]++
	}
	for i := 1; i < len(offs); i++ {
		offs[i] += offs[i-1]
	}
	chans := make([]uint32, len(pairs))
	pos := slices.Clone(offs[:len(s.users)])
	for _, p := range pairs {
		ui := uint32(p)
		chans[pos[ui]] = uint32(p >> 32)
		pos[ui]++
	}
	for ui := range s.users {
		s.users[ui].channels = chans[offs[ui]:offs[ui+1]:offs[ui+1]]
	}

	s.info = info
	s.info.ID = s.team
	s.seq = seq
	s.memDirty = true
	return s, nil
}
