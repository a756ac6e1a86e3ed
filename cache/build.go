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
//
// A strict builder (the listings' newer forms, whose partitions must be disjoint) refuses a row
// it was given before: a listing of the first contract may repeat a row under changes, but a
// row in two partitions means the origin's partitions overlap, which may as well hide a gap.
type builder struct {
	s      *Store
	pairs  []uint64
	strict bool
}

func newBuilder(team string, strict bool) *builder {
	return &builder{s: newStore(team), strict: strict}
}

func (b *builder) users(us []origin.User) error {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range us {
		if j, ok := s.userIdx[us[i].ID]; ok && b.strict && s.users[j].known {
			return fmt.Errorf("%w: user %s listed twice", origin.ErrBadResponse, s.users[j].obj.ID)
		}
		s.putUser(&us[i])
	}
	return nil
}

func (b *builder) channels(cs []origin.Channel) error {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range cs {
		if j, ok := s.chanIdx[cs[i].ID]; ok && b.strict && s.chans[j].known {
			return fmt.Errorf("%w: channel %s listed twice", origin.ErrBadResponse, s.chans[j].obj.ID)
		}
		s.putChannel(&cs[i])
	}
	return nil
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
	if b.strict {
		for i := 1; i < len(pairs); i++ {
			if pairs[i] == pairs[i-1] {
				ci, ui := uint32(pairs[i]>>32), uint32(pairs[i])
				return nil, fmt.Errorf("%w: membership of %s in %s listed twice",
					origin.ErrBadResponse, s.users[ui].obj.ID, s.chans[ci].obj.ID)
			}
		}
	}
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
