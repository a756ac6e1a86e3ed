package cache

import (
	"math"
	"slices"
	"unsafe"

	"github.com/weft-edge/weft/origin"
)

// Applying keeps, for every object, the higher `updated` version: a snapshot page and an event
// for the same object may arrive in either order and the store ends with the newer one.
//
// Memberships carry versions too, but storing one per membership would cost 8 bytes × 5M on a
// giant team. Only events can contradict a page (a page never removes anything), so versions
// are kept just for memberships an event has set (memberV; negative for a leave, a tombstone):
// a page row older than that is ignored, every other page row is applied.
//
// Events themselves are applied in seq order, each exactly once (seq ≤ the store's seq is
// ignored); the version check guards objects only against an older page.

// Change says what applying one event did.
type Change struct {
	// Stale is true when the event's object was older than what the store holds, so nothing
	// changed (a snapshot page read after the event already had the newer version).
	Stale bool
}

// eventVersion is the version of a membership or deletion event: its own `updated`, or, from an
// origin that sends none, a version newer than any page.
func eventVersion(ev *origin.Event) int64 {
	if ev.Updated > 0 {
		return ev.Updated
	}
	return math.MaxInt64
}

func memberKey(ci, ui uint32) uint64 { return uint64(ci)<<32 | uint64(ui) }

// userSlot interns a user ID. Caller holds mu for writing.
func (s *Store) userSlot(id string) uint32 {
	if i, ok := s.userIdx[id]; ok {
		return i
	}
	i := uint32(len(s.users))
	s.users = append(s.users, userRec{obj: origin.User{ID: id, Team: s.team}})
	s.userIdx[id] = i
	return i
}

// chanSlot interns a channel ID. Caller holds mu for writing.
func (s *Store) chanSlot(id string) uint32 {
	if i, ok := s.chanIdx[id]; ok {
		return i
	}
	i := uint32(len(s.chans))
	s.chans = append(s.chans, chanRec{obj: origin.Channel{ID: id, Team: s.team}})
	s.chanIdx[id] = i
	return i
}

// str shares repeated small strings (time zones, titles) between objects. Bounded so that an
// origin with all-distinct values cannot grow it without limit.
func (s *Store) str(v string) string {
	if v == "" {
		return ""
	}
	if p, ok := s.strs[v]; ok {
		return p
	}
	if len(s.strs) < 4096 && len(v) <= 64 {
		s.strs[v] = v
	}
	return v
}

// putUser stores u if it is newer than what is held. Caller holds mu for writing.
func (s *Store) putUser(u *origin.User) bool {
	r := &s.users[s.userSlot(u.ID)]
	if r.known && r.obj.Updated >= u.Updated {
		return false
	}
	id := r.obj.ID // the interned copy, shared with the index map
	r.obj = *u
	r.obj.ID = id
	r.obj.Team = s.team
	r.obj.TZ = s.str(u.TZ)
	r.obj.Title = s.str(u.Title)
	r.known = true
	s.memDirty = true
	return true
}

// putChannel stores c if it is newer than what is held and than its tombstone.
func (s *Store) putChannel(c *origin.Channel) bool {
	r := &s.chans[s.chanSlot(c.ID)]
	if r.deleted >= c.Updated || (r.known && r.obj.Updated >= c.Updated) {
		return false
	}
	id := r.obj.ID
	r.obj = *c
	r.obj.ID = id
	r.obj.Team = s.team
	r.known = true
	r.deleted = 0
	s.memDirty = true
	return true
}

func (s *Store) addMember(ci, ui uint32) {
	c, u := &s.chans[ci], &s.users[ui]
	if i, found := slices.BinarySearch(c.members, ui); !found {
		c.members = slices.Insert(c.members, i, ui)
	}
	if i, found := slices.BinarySearch(u.channels, ci); !found {
		u.channels = slices.Insert(u.channels, i, ci)
	}
	s.memDirty = true
}

func (s *Store) removeMember(ci, ui uint32) {
	c, u := &s.chans[ci], &s.users[ui]
	if i, found := slices.BinarySearch(c.members, ui); found {
		c.members = slices.Delete(c.members, i, i+1)
	}
	if i, found := slices.BinarySearch(u.channels, ci); found {
		u.channels = slices.Delete(u.channels, i, i+1)
	}
}

// ApplyUsers applies a page of users (already validated by the origin decoder).
func (s *Store) ApplyUsers(users []origin.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range users {
		s.putUser(&users[i])
	}
}

// ApplyChannels applies a page of channels.
func (s *Store) ApplyChannels(chans []origin.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range chans {
		s.putChannel(&chans[i])
	}
}

// ApplyMemberships applies a page of memberships, ignoring rows older than an event that set
// the same membership.
func (s *Store) ApplyMemberships(rows []origin.Membership) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range rows {
		m := &rows[i]
		ci, ui := s.chanSlot(m.Channel), s.userSlot(m.User)
		if v, ok := s.memberV[memberKey(ci, ui)]; ok && abs(v) >= m.Updated {
			continue
		}
		s.addMember(ci, ui)
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// SetInfo sets the team object if newer.
func (s *Store) SetInfo(t origin.Team) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Updated > s.info.Updated {
		s.info = t
	}
}

// ApplyEvent applies one event of the team's stream. It returns ok=false, changing nothing,
// for an event at or below the store's seq (already applied) and for another team's event.
func (s *Store) ApplyEvent(ev *origin.Event) (ch Change, ok bool) {
	if ev.Team != s.team {
		return ch, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Seq <= s.seq {
		return ch, false
	}
	s.seq = ev.Seq
	s.applied++
	switch ev.Type {
	case origin.EventUserChange:
		ch.Stale = !s.putUser(ev.User)
	case origin.EventTeamChange:
		if ev.TeamInfo.Updated > s.info.Updated {
			s.info = *ev.TeamInfo
		} else {
			ch.Stale = true
		}
	case origin.EventChannelCreated:
		ch.Stale = !s.putChannel(ev.Channel)
		if ev.Channel.Creator != "" {
			// The creator is the first member; the origin sends no member_joined for it. This
			// holds even when the channel object is stale: a load's snapshot may hold the
			// channel (its channels page read after the creation) but not the creator's
			// membership (its memberships pages read before). Later changes to the membership
			// are events after this one, replayed in order, as with member_joined.
			ci, ui := s.chanSlot(ev.Channel.ID), s.userSlot(ev.Channel.Creator)
			if v, ok := s.memberV[memberKey(ci, ui)]; !ok || abs(v) < ev.Channel.Updated {
				s.memberV[memberKey(ci, ui)] = ev.Channel.Updated
				s.addMember(ci, ui)
			}
		}
	case origin.EventChannelChange:
		ch.Stale = !s.putChannel(ev.Channel)
	case origin.EventChannelDeleted:
		r := &s.chans[s.chanSlot(ev.ChannelID)]
		r.deleted = max(r.deleted, eventVersion(ev))
	case origin.EventMemberJoined, origin.EventMemberLeft:
		ci, ui := s.chanSlot(ev.ChannelID), s.userSlot(ev.UserID)
		v := eventVersion(ev)
		if ev.Type == origin.EventMemberJoined {
			s.memberV[memberKey(ci, ui)] = v
			s.addMember(ci, ui)
		} else {
			s.memberV[memberKey(ci, ui)] = -v
			s.removeMember(ci, ui)
		}
		s.memDirty = true
	}
	return ch, true
}

// Bytes is an estimate of the memory the store holds: records, strings, member lists, maps.
// It is recomputed (a pass over the team under the read lock) only after changes.
func (s *Store) Bytes() int64 {
	s.mu.RLock()
	if !s.memDirty && s.memBytes > 0 {
		defer s.mu.RUnlock()
		return s.memBytes
	}
	const mapEntry = 48 // key header + value + bucket overhead per entry, measured roughly
	n := int64(unsafe.Sizeof(*s))
	n += int64(cap(s.users))*int64(unsafe.Sizeof(userRec{})) + int64(cap(s.chans))*int64(unsafe.Sizeof(chanRec{}))
	n += int64(len(s.userIdx)+len(s.chanIdx)+len(s.memberV)+len(s.strs)) * mapEntry
	for i := range s.users {
		u := &s.users[i]
		n += int64(len(u.obj.ID) + len(u.obj.Name) + len(u.obj.RealName) + len(u.obj.DisplayName) + len(u.obj.AvatarURL))
		n += int64(cap(u.channels)) * 4
	}
	for i := range s.chans {
		c := &s.chans[i]
		n += int64(len(c.obj.ID)+len(c.obj.Name)+len(c.obj.Topic)+len(c.obj.Purpose)+len(c.obj.Created)+len(c.obj.Creator)) + int64(cap(c.members))*4
	}
	for k := range s.strs {
		n += int64(len(k))
	}
	s.mu.RUnlock()
	s.mu.Lock()
	s.memBytes, s.memDirty = n, false
	s.mu.Unlock()
	return n
}
