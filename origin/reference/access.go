package reference

import "github.com/weft-edge/weft/origin"

// Go accessors to the current state, for tests, tools and the load generator: the same data
// the HTTP listings serve, without HTTP. The whole-team ones copy the whole team (366,000 users
// or ~5 million memberships at giant): use the pages for big teams.

// World returns the world the server started from.
func (s *Server) World() *World { return s.world }

// TeamIDs returns the IDs of the teams the server serves.
func (s *Server) TeamIDs() []string { return s.world.TeamIDs() }

// Seq returns the last seq published for team (what GET /teams/{team} reports); 0 when the team
// has no published event or does not exist.
func (s *Server) Seq(team string) int64 {
	if st := s.team(team); st != nil {
		return st.published.Load()
	}
	return 0
}

// Team returns the current team object.
func (s *Server) Team(team string) (origin.Team, bool) {
	st := s.team(team)
	if st == nil {
		return origin.Team{}, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.currentTeam(), true
}

// User returns the current state of a user of team; deleted users are found, with Deleted set.
func (s *Server) User(team, id string) (origin.User, bool) {
	st := s.team(team)
	if st == nil {
		return origin.User{}, false
	}
	t, u, ok := parseObjectID('U', id)
	if !ok || t != st.idx || !st.hasUser(u) {
		return origin.User{}, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.user(u), true
}

// Channel returns the current state of a channel of team; deleted channels are not found.
func (s *Server) Channel(team, id string) (origin.Channel, bool) {
	st := s.team(team)
	if st == nil {
		return origin.Channel{}, false
	}
	t, c, ok := parseObjectID('C', id)
	if !ok || t != st.idx {
		return origin.Channel{}, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.channel(c)
}

// Users returns every user of team, in page order.
func (s *Server) Users(team string) []origin.User {
	st := s.team(team)
	if st == nil {
		return nil
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	users := make([]origin.User, st.w.size.Users)
	for u := range users {
		users[u] = st.user(u)
	}
	return users
}

// Channels returns every live channel of team, in page order.
func (s *Server) Channels(team string) []origin.Channel {
	st := s.team(team)
	if st == nil {
		return nil
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	var chans []origin.Channel
	for c := range st.counts {
		if ch, ok := st.channel(c); ok {
			chans = append(chans, ch)
		}
	}
	return chans
}

// Memberships returns every membership of team, ordered by user then channel, as the pages.
func (s *Server) Memberships(team string) []origin.Membership {
	st := s.team(team)
	if st == nil {
		return nil
	}
	g := st.w.getGen()
	defer st.w.gens.Put(g)
	st.mu.RLock()
	defer st.mu.RUnlock()
	var ms []origin.Membership
	for u := range st.w.size.Users {
		uid := userID(st.idx, u)
		g.rows = st.userChannels(g, u, g.rows)
		for _, row := range g.rows {
			ms = append(ms, origin.Membership{Channel: channelID(st.idx, int(row.ch)), User: uid, Updated: row.updated})
		}
	}
	return ms
}

// ChannelsOf returns the IDs of the live channels user is a member of, in ID order; nil when
// the team or user does not exist.
func (s *Server) ChannelsOf(team, user string) []string {
	st := s.team(team)
	if st == nil {
		return nil
	}
	t, u, ok := parseObjectID('U', user)
	if !ok || t != st.idx || !st.hasUser(u) {
		return nil
	}
	g := st.w.getGen()
	defer st.w.gens.Put(g)
	st.mu.RLock()
	defer st.mu.RUnlock()
	g.rows = st.userChannels(g, u, g.rows)
	ids := make([]string, len(g.rows))
	for i, row := range g.rows {
		ids[i] = channelID(st.idx, int(row.ch))
	}
	return ids
}
