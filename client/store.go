package client

import "sync"

// Store is the client's memory of the team's objects: every user and channel the edge sent it,
// by replies, by events that carry objects and by annotations, at the newest version seen. It
// is what lets a client render an event without asking: the edge attaches what the client
// lacks (docs/protocol.md section 6) and the Store keeps it.
//
// A Store is safe for concurrent use. Its objects are copies: changing one changes nothing
// inside the Store.
type Store struct {
	mu       sync.RWMutex
	users    map[string]User
	channels map[string]Channel
	team     Team
}

func newStore() *Store {
	return &Store{users: make(map[string]User), channels: make(map[string]Channel)}
}

// User returns the user id as last seen.
func (s *Store) User(id string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	return u, ok
}

// Channel returns the channel id as last seen.
func (s *Store) Channel(id string) (Channel, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.channels[id]
	return c, ok
}

// Team returns the team as last seen (zero before the first boot or team_change).
func (s *Store) Team() Team {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.team
}

// Len returns how many users and channels the Store holds.
func (s *Store) Len() (users, channels int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users), len(s.channels)
}

// Renderable reports whether every object ev names (docs/protocol.md section 6: its sender or
// subject, the users it mentions, its channel) is in the Store.
func (s *Store) Renderable(ev *Event) bool {
	users, channel := ev.Names()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.channels[channel]; channel != "" && !ok {
		return false
	}
	for _, id := range users {
		if _, ok := s.users[id]; !ok {
			return false
		}
	}
	return true
}

// Missing returns the IDs of the users and the channel ev names that the Store lacks.
func (s *Store) Missing(ev *Event) (users []string, channel string) {
	names, ch := ev.Names()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.channels[ch]; ch != "" && !ok {
		channel = ch
	}
	for _, id := range names {
		if _, ok := s.users[id]; !ok && !contains(users, id) {
			users = append(users, id)
		}
	}
	return users, channel
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// putUsers keeps each user unless the Store has a newer version of it.
func (s *Store) putUsers(us ...User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		if u.ID == "" {
			continue
		}
		if old, ok := s.users[u.ID]; !ok || u.Updated >= old.Updated {
			s.users[u.ID] = u
		}
	}
}

// putChannels keeps each channel unless the Store has a newer version of it.
func (s *Store) putChannels(cs ...Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		if c.ID == "" {
			continue
		}
		if old, ok := s.channels[c.ID]; !ok || c.Updated >= old.Updated {
			s.channels[c.ID] = c
		}
	}
}

func (s *Store) putTeam(t Team) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Updated >= s.team.Updated {
		s.team = t
	}
}

func (s *Store) forgetUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
}

func (s *Store) deleteChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.channels, id)
}

// apply merges what ev carries and what was attached to it.
func (s *Store) apply(ev *Event) {
	if len(ev.Annotations.Users) > 0 {
		us := make([]User, 0, len(ev.Annotations.Users))
		for _, u := range ev.Annotations.Users {
			us = append(us, *u)
		}
		s.putUsers(us...)
	}
	for _, c := range ev.Annotations.Channels {
		s.putChannels(*c)
	}
	switch {
	case ev.User != nil:
		s.putUsers(*ev.User)
	case ev.Team != nil:
		s.putTeam(*ev.Team)
	case ev.Channel != nil:
		s.putChannels(*ev.Channel)
	case ev.Type == EventChannelDeleted:
		s.deleteChannel(ev.ChannelID)
	case ev.Cut != "" && ev.Type == EventUserChange:
		s.forgetUser(ev.UserID) // changed, but sent without the user: what is held is stale
	case ev.Cut != "" && (ev.Type == EventChannelCreated || ev.Type == EventChannelChange):
		s.deleteChannel(ev.ChannelID)
	}
}
