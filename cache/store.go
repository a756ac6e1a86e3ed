package cache

import (
	"encoding/base64"
	"errors"
	"slices"
	"sync"

	"github.com/weft-edge/weft/origin"
)

// Errors of store lookups.
var (
	// ErrNotFound: the object does not exist, or not for this viewer (a private channel the
	// viewer is not in does not exist for them).
	ErrNotFound = errors.New("cache: not found")
	// ErrBadCursor: a paging cursor that this store did not hand out.
	ErrBadCursor = errors.New("cache: invalid cursor")
)

// Store is one team's data: users, channels and memberships in both directions.
//
// Objects are interned to dense per-team indexes (uint32) so that memberships, the bulk of a
// big team (~5M rows for a 366K-user team), cost 4 bytes per direction instead of a string map
// entry. Member lists are sorted index slices; right after a load they are windows of one
// shared arena with cap == len, so an insert copies only that list.
//
// Every method is safe for concurrent use. mu is the team's own lock: no other team's readers
// or writers ever take it. Readers hold it only while copying results out.
type Store struct {
	team string

	mu       sync.RWMutex // guards every field below
	info     origin.Team
	seq      int64 // last event seq applied
	userIdx  map[string]uint32
	users    []userRec
	chanIdx  map[string]uint32
	chans    []chanRec
	memberV  map[uint64]int64 // versions of memberships last set by an event; <0: left (tombstone)
	strs     map[string]string
	applied  int64 // events applied, for tests and metrics
	memBytes int64 // estimate, recomputed by Bytes when stale
	memDirty bool

	follower Follower // set before the store is shared, read-only after
}

type userRec struct {
	obj      origin.User
	known    bool     // obj came from a page or an event; false: only named by a membership
	channels []uint32 // sorted channel indexes
}

type chanRec struct {
	obj     origin.Channel
	known   bool
	deleted int64    // >0: deleted at this version (a tombstone a stale page cannot undo)
	members []uint32 // sorted user indexes; kept after deletion so its last event still reaches them
}

func newStore(team string) *Store {
	return &Store{
		team:    team,
		userIdx: make(map[string]uint32),
		chanIdx: make(map[string]uint32),
		memberV: make(map[uint64]int64),
		strs:    make(map[string]string),
	}
}

// NewStore returns an empty store for team, for tests and tools; the Teams set builds its own.
func NewStore(team string) *Store { return newStore(team) }

// ID is the team's ID.
func (s *Store) ID() string { return s.team }

// Info is the team object, with counts of the objects the store holds.
func (s *Store) Info() origin.Team {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.info
}

// Seq is the last event sequence applied: the store reflects every event up to it.
func (s *Store) Seq() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Applied counts the events applied since the store was built.
func (s *Store) Applied() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Counts returns the number of known users and of live (not deleted) channels.
func (s *Store) Counts() (users, channels int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := range s.users {
		if s.users[i].known {
			users++
		}
	}
	for i := range s.chans {
		if s.chans[i].live() {
			channels++
		}
	}
	return users, channels
}

func (c *chanRec) live() bool { return c.known && c.deleted == 0 }

// visible reports whether viewer may see channel c. An empty viewer sees everything (internal
// callers); a private channel is visible to its members only.
func (s *Store) visible(c *chanRec, viewer string) bool {
	if !c.live() {
		return false
	}
	if !c.obj.IsPrivate || viewer == "" {
		return true
	}
	u, ok := s.userIdx[viewer]
	if !ok {
		return false
	}
	_, member := slices.BinarySearch(c.members, u)
	return member
}

func (s *Store) channelOut(c *chanRec) origin.Channel {
	out := c.obj
	out.MemberCount = len(c.members)
	return out
}

// User returns one user (deleted users too: they carry deleted: true).
func (s *Store) User(id string) (origin.User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i, ok := s.userIdx[id]; ok && s.users[i].known {
		return s.users[i].obj, true
	}
	return origin.User{}, false
}

// Users returns the users it knows of ids, in the order asked, and the IDs it does not know.
func (s *Store) Users(ids []string) (found []origin.User, missing []string) {
	found = make([]origin.User, 0, len(ids))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		if i, ok := s.userIdx[id]; ok && s.users[i].known {
			found = append(found, s.users[i].obj)
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing
}

// Channel returns one channel as viewer may see it.
func (s *Store) Channel(id, viewer string) (origin.Channel, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i, ok := s.chanIdx[id]; ok && s.visible(&s.chans[i], viewer) {
		return s.channelOut(&s.chans[i]), true
	}
	return origin.Channel{}, false
}

// Channels returns the channels of ids that viewer may see, and the rest as missing.
func (s *Store) Channels(ids []string, viewer string) (found []origin.Channel, missing []string) {
	found = make([]origin.Channel, 0, len(ids))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		if i, ok := s.chanIdx[id]; ok && s.visible(&s.chans[i], viewer) {
			found = append(found, s.channelOut(&s.chans[i]))
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing
}

// UsersPage lists known users in a stable order, limit at a time. The cursor is opaque; ""
// starts at the beginning and a returned "" means the end.
func (s *Store) UsersPage(cursor string, limit int) ([]origin.User, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	start, err := s.resume(cursor, s.userIdx)
	if err != nil {
		return nil, "", err
	}
	out := make([]origin.User, 0, min(limit, len(s.users)))
	for i := start; i < len(s.users); i++ {
		if !s.users[i].known {
			continue
		}
		if len(out) == limit {
			return out, encodeCursor(out[len(out)-1].ID), nil
		}
		out = append(out, s.users[i].obj)
	}
	return out, "", nil
}

// ChannelMembers lists the user IDs of channel ch, as viewer may see them.
func (s *Store) ChannelMembers(ch, viewer, cursor string, limit int) ([]string, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ci, ok := s.chanIdx[ch]
	if !ok || !s.visible(&s.chans[ci], viewer) {
		return nil, "", ErrNotFound
	}
	return s.page(s.chans[ci].members, cursor, limit, s.userIdx, func(i uint32) (string, bool) {
		return s.users[i].obj.ID, true
	})
}

// UserChannels lists the channel IDs user is in, leaving out private channels viewer is not
// in and deleted channels.
func (s *Store) UserChannels(user, viewer, cursor string, limit int) ([]string, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ui, ok := s.userIdx[user]
	if !ok || !s.users[ui].known {
		return nil, "", ErrNotFound
	}
	self := viewer == "" || viewer == user
	return s.page(s.users[ui].channels, cursor, limit, s.chanIdx, func(i uint32) (string, bool) {
		c := &s.chans[i]
		if self {
			return c.obj.ID, c.live()
		}
		return c.obj.ID, s.visible(c, viewer)
	})
}

// page walks a sorted index list from the cursor, keeping what keep allows.
func (s *Store) page(list []uint32, cursor string, limit int, idx map[string]uint32, keep func(uint32) (string, bool)) ([]string, string, error) {
	from, err := s.resume(cursor, idx)
	if err != nil {
		return nil, "", err
	}
	pos, _ := slices.BinarySearch(list, uint32(from))
	out := make([]string, 0, min(limit, len(list)-pos))
	for _, i := range list[pos:] {
		id, ok := keep(i)
		if !ok {
			continue
		}
		if len(out) == limit {
			return out, encodeCursor(out[len(out)-1]), nil
		}
		out = append(out, id)
	}
	return out, "", nil
}

// Boot is the lazy boot payload of docs/protocol.md section 4: the caller, the team, and only the
// caller's own channels.
func (s *Store) Boot(user string) (self origin.User, team origin.Team, channels []origin.Channel, seq int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ui, ok := s.userIdx[user]
	if !ok || !s.users[ui].known {
		return self, team, nil, 0, ErrNotFound
	}
	u := &s.users[ui]
	channels = make([]origin.Channel, 0, len(u.channels))
	for _, ci := range u.channels {
		if c := &s.chans[ci]; c.live() {
			channels = append(channels, s.channelOut(c))
		}
	}
	return u.obj, s.info, channels, s.seq, nil
}

// IsMember reports whether user is in channel ch (deleted channels keep their last members).
func (s *Store) IsMember(ch, user string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ci, ok1 := s.chanIdx[ch]
	ui, ok2 := s.userIdx[user]
	if !ok1 || !ok2 {
		return false
	}
	_, ok := slices.BinarySearch(s.chans[ci].members, ui)
	return ok
}

// Members returns the member IDs of ch whatever its visibility or deletion, for fan-out.
func (s *Store) Members(ch string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ci, ok := s.chanIdx[ch]
	if !ok {
		return nil
	}
	out := make([]string, len(s.chans[ci].members))
	for k, ui := range s.chans[ci].members {
		out[k] = s.users[ui].obj.ID
	}
	return out
}

// resume turns a cursor into the index to continue after. Cursors carry the last ID returned,
// so they stay valid across a reload of the team (indexes may differ, IDs do not).
func (s *Store) resume(cursor string, idx map[string]uint32) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, ErrBadCursor
	}
	i, ok := idx[string(b)]
	if !ok {
		return 0, ErrBadCursor
	}
	return int(i) + 1, nil
}

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// ChannelPrivacy reports whether channel id is private, deleted or not (the last event of a
// deleted channel must still reach only whom it reached before). ok is false for an unknown ID.
func (s *Store) ChannelPrivacy(id string) (private, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ci, found := s.chanIdx[id]
	if !found || !s.chans[ci].known {
		return false, false
	}
	return s.chans[ci].obj.IsPrivate, true
}

// MemberCount is the number of members of ch (0 for an unknown channel).
func (s *Store) MemberCount(ch string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ci, ok := s.chanIdx[ch]; ok {
		return len(s.chans[ci].members)
	}
	return 0
}

// AreMembers sets out[i] to whether users[i] is in ch, under one read lock: the fan-out's
// check when a team has fewer sessions than the channel has members.
func (s *Store) AreMembers(ch string, users []string, out []bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ci, ok := s.chanIdx[ch]
	for i, u := range users {
		out[i] = false
		if !ok {
			continue
		}
		if ui, found := s.userIdx[u]; found {
			_, out[i] = slices.BinarySearch(s.chans[ci].members, ui)
		}
	}
}
