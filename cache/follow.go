package cache

import "github.com/weft-edge/weft/origin"

// Derived state of a store (the autocomplete index) lives in other rooms; this file is what the
// cache offers them: a follower that sees every event right after the store applied it, and
// reads by the store's dense indexes so that a follower can key its own arrays the same way
// and share the store's membership lists instead of keeping a copy.

// A Follower keeps state derived from one store current. Teams creates one per store (a reload
// builds a new store and a new follower; the old follower is closed), right after the snapshot
// and before the first event, so it sees every event the store applies after its build read.
type Follower interface {
	// Apply is called on the team's feed goroutine, in seq order, after the store applied ev.
	// It must not block for long: the team's next event waits for it.
	Apply(ev *origin.Event, ch Change)
	// Close releases the follower; Apply is not called after it.
	Close()
}

// SetFollower attaches f to a store that no Teams set owns (tools, tests); Teams attaches its
// own through Config.Follow. Call it before the store is shared.
func (s *Store) SetFollower(f Follower) { s.follower = f }

// Follower returns the follower attached to this store, or nil.
func (s *Store) Follower() Follower { return s.follower }

// UserObject is a user with its dense index in the store.
type UserObject struct {
	Idx  uint32
	User *origin.User // read-only; valid until the callback returns
}

// ChannelObject is a live or deleted channel with its dense index in the store.
type ChannelObject struct {
	Idx     uint32
	Channel *origin.Channel // read-only; valid until the callback returns
	Deleted bool
}

// EachObject calls fu for every known user and fc for every known channel (deleted ones too,
// flagged), under the read lock, and returns the seq the store is at: the objects reflect every
// event up to it. The callbacks must copy what they keep and must not call the store.
func (s *Store) EachObject(fu func(UserObject), fc func(ChannelObject)) (seq int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := range s.users {
		if s.users[i].known {
			fu(UserObject{Idx: uint32(i), User: &s.users[i].obj})
		}
	}
	for i := range s.chans {
		if c := &s.chans[i]; c.known {
			fc(ChannelObject{Idx: uint32(i), Channel: &c.obj, Deleted: c.deleted != 0})
		}
	}
	return s.seq
}

// UserAt returns user id with its dense index; ok is false for an unknown user.
func (s *Store) UserAt(id string) (idx uint32, u origin.User, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, found := s.userIdx[id]
	if !found || !s.users[i].known {
		return 0, u, false
	}
	return i, s.users[i].obj, true
}

// ChannelAt returns channel id with its dense index and whether it was deleted; ok is false
// for an unknown channel.
func (s *Store) ChannelAt(id string) (idx uint32, c origin.Channel, deleted, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, found := s.chanIdx[id]
	if !found || !s.chans[i].known {
		return 0, c, false, false
	}
	return i, s.channelOut(&s.chans[i]), s.chans[i].deleted != 0, true
}

// Affinity is what one user is close to in a team: the channels they are in, and the users
// who share a channel with them. It is filled by Store.Affinity and reused across calls.
//
// Channels bigger than the limit given to Store.Affinity do not make their members close:
// everyone shares #general with everyone, which says nothing about who a person works with.
type Affinity struct {
	Channels []uint32 // dense indexes of the user's live channels, sorted
	Users    []uint32 // dense indexes of users sharing a small channel with them, each once

	userBits []uint64
}

// HasUser reports whether dense user index u is in Users.
func (a *Affinity) HasUser(u uint32) bool {
	w := int(u >> 6)
	return w < len(a.userBits) && a.userBits[w]&(1<<(u&63)) != 0
}

// InChannel reports whether the user is a member of the channel with dense index c.
func (a *Affinity) InChannel(c uint32) bool {
	lo, hi := 0, len(a.Channels)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a.Channels[m] < c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(a.Channels) && a.Channels[lo] == c
}

// reset empties a for reuse, clearing only the bits it set.
func (a *Affinity) reset(users int) {
	for _, u := range a.Users {
		a.userBits[u>>6] = 0
	}
	a.Channels, a.Users = a.Channels[:0], a.Users[:0]
	if n := (users + 63) >> 6; len(a.userBits) < n {
		a.userBits = make([]uint64, n)
	}
}

// Affinity fills a for user: its live channels (private ones included: they are the user's
// own), and the members of those with at most maxMembers members. The work is proportional to
// the sizes of those small channels, never to the size of the team. ok is false for an unknown
// user, with a emptied.
func (s *Store) Affinity(user string, maxMembers int, a *Affinity) (ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a.reset(len(s.users))
	ui, found := s.userIdx[user]
	if !found || !s.users[ui].known {
		return false
	}
	for _, ci := range s.users[ui].channels {
		c := &s.chans[ci]
		if !c.live() {
			continue
		}
		a.Channels = append(a.Channels, ci)
		if len(c.members) > maxMembers {
			continue
		}
		for _, m := range c.members {
			if w, bit := m>>6, uint64(1)<<(m&63); a.userBits[w]&bit == 0 {
				a.userBits[w] |= bit
				a.Users = append(a.Users, m)
			}
		}
	}
	return true
}

// closeFollower closes the store's follower, if any. Nil-safe.
func (s *Store) closeFollower() {
	if s != nil && s.follower != nil {
		s.follower.Close()
	}
}
