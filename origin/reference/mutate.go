package reference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weft-edge/weft/origin"
)

// Changes to the world. Each one, per team and under the team's pubMu: validates, applies,
// takes the next seq, queues its event behind any still pending, and publishes the queue in
// order. So events reach the bus in seq order with no hole, and GET /teams/{team} reports only
// seqs whose publish succeeded.
//
// A change refused for bad input returns an error wrapping ErrBadChange: nothing is applied
// and no seq is used. A change whose publish fails is applied and returns its event together
// with the error (wrapping ErrPending): the event stays queued and is published, with the same
// seq, by a later change or by Flush (KeepFlushing), as a real origin's outbox would. While
// the bus is down (a publisher that says it is not connected, after a failed publish) changes
// are applied and queued without trying to publish, so that they do not each wait for a
// publish timeout; past maxPending queued events a team's changes are refused, unapplied.
//
// The callbacks of UpdateUser, UpdateChannel and UpdateTeam run while the team's changes are
// serialized: they must not call the Server.

// ErrPending wraps the error of a change that was applied but whose event is not published
// yet: it is queued and goes out, in order, once the bus takes it.
var ErrPending = errors.New("origin: event pending publish")

// maxPending is how many unpublished events a team may queue before its changes are refused.
const maxPending = 100_000

// ErrBadChange wraps every reason a change is refused.
var ErrBadChange = errors.New("origin: bad change")

// MaxEventBytes bounds the encoding of an event the origin makes. NATS refuses a message over
// its max_payload (1 MiB by default), and an event it refused would stay first in the team's
// outbox for ever, holding back every change of the team after it: such a change is refused
// instead, before it changes anything (ErrEventTooLarge, an ErrBadChange).
const MaxEventBytes = 256 << 10

// ErrEventTooLarge: the change's event would be over MaxEventBytes.
var ErrEventTooLarge = errors.New("event too large")

// fits refuses ev when its encoding is over MaxEventBytes. Called before a change touches the
// state.
func fits(ev *origin.Event) error {
	b, err := ev.MarshalJSON()
	if err != nil {
		return badChange("%s event: %v", ev.Type, err)
	}
	if len(b) > MaxEventBytes {
		return fmt.Errorf("%w: %w: a %s event of %d bytes (the bound is %d)", ErrBadChange, ErrEventTooLarge, ev.Type, len(b), MaxEventBytes)
	}
	return nil
}

func badChange(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadChange, fmt.Sprintf(format, args...))
}

// change runs apply for one change of team. apply gets the version the change takes (seq+1,
// so every change is newer than the base version 1). It may read the team's state without mu
// because pubMu keeps every other writer out; it takes mu only to write.
func (s *Server) change(ctx context.Context, team string, apply func(st *teamState, v int64) (*origin.Event, error)) (*origin.Event, error) {
	st := s.team(team)
	if st == nil {
		return nil, badChange("unknown team %q", team)
	}
	st.pubMu.Lock()
	defer st.pubMu.Unlock()
	if len(st.pending) >= maxPending {
		return nil, fmt.Errorf("origin: %d events of team %s wait to be published; changes are refused until the bus takes them: %w",
			len(st.pending), st.id, ErrPending)
	}
	seq := st.seq + 1
	ev, err := apply(st, seq+1)
	if err != nil {
		return nil, err
	}
	ev.Team, ev.Seq = st.id, seq
	st.seq = seq
	st.pending = append(st.pending, ev)
	if st.failing && !s.publisherUp() {
		return ev, fmt.Errorf("origin: %s seq %d queued, the bus is down: %w", ev.Team, ev.Seq, ErrPending)
	}
	if err := s.flushTeam(ctx, st); err != nil {
		return ev, err
	}
	return ev, nil
}

// publisherUp reports whether the publisher says it is connected; one that does not say is
// taken to be.
func (s *Server) publisherUp() bool {
	c, ok := s.cfg.Publisher.(interface{ Connected() bool })
	return !ok || c.Connected()
}

// flushTeam publishes the team's pending events in order, stopping at the first failure.
// The caller holds st.pubMu.
func (s *Server) flushTeam(ctx context.Context, st *teamState) error {
	for len(st.pending) > 0 {
		ev := st.pending[0]
		if s.cfg.Publisher != nil {
			if err := s.cfg.Publisher.PublishEvent(ctx, ev); err != nil {
				st.failing = true
				return fmt.Errorf("origin: publishing %s seq %d (%d queued): %w: %w", ev.Team, ev.Seq, len(st.pending), ErrPending, err)
			}
		}
		st.pending[0] = nil
		st.pending = st.pending[1:]
		st.published.Store(ev.Seq)
	}
	st.failing = false
	if cap(st.pending) > 1024 {
		st.pending = nil // an outage's backlog: give its array back
	}
	return nil
}

// Flush publishes the events left pending by failed publishes, for every team. While the
// publisher says it is not connected it tries none and says so.
func (s *Server) Flush(ctx context.Context) error {
	if !s.publisherUp() {
		for _, st := range s.teams {
			st.pubMu.Lock()
			n := len(st.pending)
			st.pubMu.Unlock()
			if n > 0 {
				return fmt.Errorf("origin: events wait to be published and the bus is down: %w", ErrPending)
			}
		}
		return nil
	}
	var errs []error
	for _, st := range s.teams {
		st.pubMu.Lock()
		if err := s.flushTeam(ctx, st); err != nil {
			errs = append(errs, err)
		}
		st.pubMu.Unlock()
	}
	return errors.Join(errs...)
}

// KeepFlushing calls Flush every interval until ctx ends, so that events whose publish failed
// (a NATS outage) go out soon after the bus is back even when their team changes no more: a
// real origin's outbox relay. Flush errors are logged at most once per outage: while the bus
// is down every attempt fails the same way.
func (s *Server) KeepFlushing(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.Flush(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.log.Warn("origin: pending events not published yet; retrying", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("origin: pending events published")
			failing = false
		}
	}
}

// PostMessage posts a message by a member of a channel. mentions must be users of the team.
func (s *Server) PostMessage(ctx context.Context, team, channel, user, text string, mentions []string) (*origin.Event, error) {
	return s.change(ctx, team, func(st *teamState, _ int64) (*origin.Event, error) {
		c, err := st.openChannel(channel)
		if err != nil {
			return nil, err
		}
		u, err := st.activeUser(user)
		if err != nil {
			return nil, err
		}
		if text == "" {
			return nil, badChange("empty message")
		}
		for _, m := range mentions {
			if _, err := st.userIndex(m); err != nil {
				return nil, fmt.Errorf("mention: %w", err)
			}
		}
		g := st.w.getGen()
		_, member := st.membership(g, u, c)
		st.w.gens.Put(g)
		if !member {
			return nil, badChange("user %s is not in channel %s", user, channel)
		}
		// Slack-style ts: unique and increasing per team, so it can serve as a message ID.
		ts := max(time.Now().UnixMicro(), st.lastTS+1)
		ev := &origin.Event{Type: origin.EventMessage, ChannelID: channel, UserID: user, Text: text,
			TS:       strconv.FormatInt(ts/1e6, 10) + "." + fmt.Sprintf("%06d", ts%1e6),
			Mentions: slices.Clone(mentions)}
		if err := fits(ev); err != nil {
			return nil, err
		}
		st.lastTS = ts
		return ev, nil
	})
}

// UpdateUser changes a user with fn (user_change). fn may change anything but the ID and the
// team, including Deleted; handles are not checked for uniqueness.
func (s *Server) UpdateUser(ctx context.Context, team, userID string, fn func(*origin.User)) (*origin.Event, error) {
	return s.change(ctx, team, func(st *teamState, v int64) (*origin.Event, error) {
		u, err := st.userIndex(userID)
		if err != nil {
			return nil, err
		}
		cur := st.user(u)
		next := cur
		fn(&next)
		if next.ID != cur.ID || next.Team != cur.Team {
			return nil, badChange("user %s: the id and team cannot change", userID)
		}
		next.Updated = v
		ev := &origin.Event{Type: origin.EventUserChange, User: new(next)}
		if err := fits(ev); err != nil {
			return nil, err
		}
		st.mu.Lock()
		st.users[int32(u)] = &next
		st.mu.Unlock()
		return ev, nil
	})
}

// JoinChannel adds a user to a channel (member_joined).
func (s *Server) JoinChannel(ctx context.Context, team, channel, user string) (*origin.Event, error) {
	return s.setMember(ctx, team, channel, user, true)
}

// LeaveChannel removes a user from a channel (member_left). Nobody leaves #general.
func (s *Server) LeaveChannel(ctx context.Context, team, channel, user string) (*origin.Event, error) {
	return s.setMember(ctx, team, channel, user, false)
}

func (s *Server) setMember(ctx context.Context, team, channel, user string, join bool) (*origin.Event, error) {
	return s.change(ctx, team, func(st *teamState, v int64) (*origin.Event, error) {
		c, err := st.openChannel(channel)
		if err != nil {
			return nil, err
		}
		var u int
		if join {
			u, err = st.activeUser(user)
		} else {
			u, err = st.userIndex(user)
		}
		if err != nil {
			return nil, err
		}
		g := st.w.getGen()
		_, member := st.membership(g, u, c)
		st.w.gens.Put(g)
		typ := origin.EventMemberJoined
		switch {
		case join && member:
			return nil, badChange("user %s is already in channel %s", user, channel)
		case !join && !member:
			return nil, badChange("user %s is not in channel %s", user, channel)
		case !join && c == 0:
			return nil, badChange("nobody leaves #general")
		case !join:
			typ = origin.EventMemberLeft
		}
		st.mu.Lock()
		st.setMembership(u, c, join, v)
		st.mu.Unlock()
		return &origin.Event{Type: typ, ChannelID: channel, UserID: user, Updated: v}, nil
	})
}

// CreateChannel creates a channel with its creator as the only member (channel_created; the
// creator's membership takes the event's version).
func (s *Server) CreateChannel(ctx context.Context, team, name, creator string, private bool) (*origin.Event, error) {
	return s.change(ctx, team, func(st *teamState, v int64) (*origin.Event, error) {
		if err := checkChannelName(name); err != nil {
			return nil, err
		}
		u, err := st.activeUser(creator)
		if err != nil {
			return nil, err
		}
		names := st.channelNames()
		if _, taken := names[name]; taken {
			return nil, badChange("channel name %q is taken", name)
		}
		c := len(st.counts)
		if c >= maxObjects {
			return nil, badChange("team %s has no channel IDs left", team)
		}
		ch := origin.Channel{ID: channelID(st.idx, c), Team: st.id, Name: name, IsPrivate: private,
			Created: time.Now().UTC().Format(time.RFC3339), Creator: creator, Updated: v}
		st.mu.Lock()
		st.counts = append(st.counts, 0)
		st.channels[int32(c)] = new(ch)
		st.setMembership(u, c, true, v)
		st.mu.Unlock()
		names[name] = int32(c)
		ch.MemberCount = 1
		return &origin.Event{Type: origin.EventChannelCreated, Channel: &ch}, nil
	})
}

// UpdateChannel changes a channel with fn (channel_change): rename, topic, purpose, archive.
// The ID, team and member count cannot change; #general is never archived nor private.
func (s *Server) UpdateChannel(ctx context.Context, team, channel string, fn func(*origin.Channel)) (*origin.Event, error) {
	return s.change(ctx, team, func(st *teamState, v int64) (*origin.Event, error) {
		c, err := st.channelIndex(channel)
		if err != nil {
			return nil, err
		}
		cur, _ := st.channel(c)
		next := cur
		fn(&next)
		next.MemberCount = cur.MemberCount // derived from memberships
		switch {
		case next.ID != cur.ID || next.Team != cur.Team:
			return nil, badChange("channel %s: the id and team cannot change", channel)
		case c == 0 && (next.IsArchived || next.IsPrivate):
			return nil, badChange("#general cannot be archived or private")
		}
		names := st.channelNames()
		if next.Name != cur.Name {
			if err := checkChannelName(next.Name); err != nil {
				return nil, err
			}
			if _, taken := names[next.Name]; taken {
				return nil, badChange("channel name %q is taken", next.Name)
			}
		}
		next.Updated = v
		if err := fits(&origin.Event{Type: origin.EventChannelChange, Channel: &next}); err != nil {
			return nil, err
		}
		st.mu.Lock()
		st.channels[int32(c)] = new(next)
		st.mu.Unlock()
		delete(names, cur.Name)
		names[next.Name] = int32(c)
		return &origin.Event{Type: origin.EventChannelChange, Channel: &next}, nil
	})
}

// DeleteChannel deletes a channel and, with it, its memberships (channel_deleted). #general
// cannot be deleted.
func (s *Server) DeleteChannel(ctx context.Context, team, channel string) (*origin.Event, error) {
	return s.change(ctx, team, func(st *teamState, v int64) (*origin.Event, error) {
		c, err := st.channelIndex(channel)
		if err != nil {
			return nil, err
		}
		if c == 0 {
			return nil, badChange("#general cannot be deleted")
		}
		cur, _ := st.channel(c)
		names := st.channelNames()
		st.mu.Lock()
		st.deleted[int32(c)] = v
		st.mu.Unlock()
		delete(names, cur.Name)
		return &origin.Event{Type: origin.EventChannelDeleted, ChannelID: channel, Updated: v}, nil
	})
}

// UpdateTeam changes the team object with fn (team_change). The ID and counts cannot change.
func (s *Server) UpdateTeam(ctx context.Context, team string, fn func(*origin.Team)) (*origin.Event, error) {
	return s.change(ctx, team, func(st *teamState, v int64) (*origin.Event, error) {
		cur := st.currentTeam()
		next := cur
		fn(&next)
		if next.ID != cur.ID {
			return nil, badChange("team %s: the id cannot change", team)
		}
		if next.Name == "" {
			return nil, badChange("team %s: empty name", team)
		}
		next.UserCount, next.ChannelCount, next.Updated = cur.UserCount, cur.ChannelCount, v
		if err := fits(&origin.Event{Type: origin.EventTeamChange, TeamInfo: &next}); err != nil {
			return nil, err
		}
		st.mu.Lock()
		st.team = next
		st.mu.Unlock()
		return &origin.Event{Type: origin.EventTeamChange, TeamInfo: &next}, nil
	})
}

// userIndex resolves a user ID of the team, deleted users included.
func (st *teamState) userIndex(id string) (int, error) {
	t, u, ok := parseObjectID('U', id)
	if !ok || t != st.idx || !st.hasUser(u) {
		return 0, badChange("no user %q in team %s", id, st.id)
	}
	return u, nil
}

// activeUser resolves a user who can act: one that is not deleted.
func (st *teamState) activeUser(id string) (int, error) {
	u, err := st.userIndex(id)
	if err != nil {
		return 0, err
	}
	if st.user(u).Deleted {
		return 0, badChange("user %s is deactivated", id)
	}
	return u, nil
}

// channelIndex resolves a live (not deleted) channel ID of the team.
func (st *teamState) channelIndex(id string) (int, error) {
	t, c, ok := parseObjectID('C', id)
	if ok && t == st.idx {
		if _, ok = st.channel(c); ok {
			return c, nil
		}
	}
	return 0, badChange("no channel %q in team %s", id, st.id)
}

// openChannel resolves a channel that members can post to, join and leave: not archived.
func (st *teamState) openChannel(id string) (int, error) {
	c, err := st.channelIndex(id)
	if err != nil {
		return 0, err
	}
	if ch, _ := st.channel(c); ch.IsArchived {
		return 0, badChange("channel %s is archived", id)
	}
	return c, nil
}

// checkChannelName applies Slack's rule: 1 to 80 characters, lower case letters (of any
// script), digits, '-' and '_'.
func checkChannelName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 80 {
		return badChange("channel name %q must have 1 to 80 characters", name)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || unicode.IsDigit(r) || unicode.IsLetter(r) && !unicode.IsUpper(r) && !unicode.IsTitle(r)) {
			return badChange("channel name %q: only lower case letters, digits, '-' and '_'", name)
		}
	}
	return nil
}
