package protocol

import (
	"errors"
	"fmt"
)

// The objects of docs/protocol.md section 4, as docs/origin.md has an origin serve them: the
// edge caches them and sends them to clients unchanged, so the origin contract (package origin)
// and the client (package client) name these types through aliases.

// User is a member of a team.
type User struct {
	ID          string `json:"id"`
	Team        string `json:"team"`
	Name        string `json:"name"`
	RealName    string `json:"real_name"`
	DisplayName string `json:"display_name"`
	Title       string `json:"title"`
	AvatarURL   string `json:"avatar_url"`
	TZ          string `json:"tz"`
	IsBot       bool   `json:"is_bot"`
	Deleted     bool   `json:"deleted"`
	// Updated is the object's version: the origin raises it on every change.
	Updated int64 `json:"updated"`
}

// Channel is a conversation in a team.
type Channel struct {
	ID          string `json:"id"`
	Team        string `json:"team"`
	Name        string `json:"name"`
	Topic       string `json:"topic"`
	Purpose     string `json:"purpose"`
	IsPrivate   bool   `json:"is_private"`
	IsArchived  bool   `json:"is_archived"`
	Created     string `json:"created"` // RFC 3339
	Creator     string `json:"creator"`
	MemberCount int    `json:"member_count"`
	Updated     int64  `json:"updated"` // the version, as User.Updated
}

// Team is a workspace: the unit of caching, routing and event ordering.
type Team struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Domain       string `json:"domain"`
	UserCount    int    `json:"user_count"`
	ChannelCount int    `json:"channel_count"`
	Updated      int64  `json:"updated"` // the version, as User.Updated
}

// Membership says that a user is in a channel, at a version.
type Membership struct {
	Channel string `json:"channel"`
	User    string `json:"user"`
	Updated int64  `json:"updated"`
}

// ErrBadObject wraps every reason an object from the origin is refused. Its text keeps the
// "origin:" prefix it had when these checks lived in package origin: the objects are the
// origin's, and logs and callers matching the message see no change.
var ErrBadObject = errors.New("origin: bad object")

// The Validate methods check an object as weft receives it from an origin (docs/origin.md).
// They live here, not in package origin, because Go allows methods only in the package that
// declares the type.

// Validate checks a user from team's snapshot or events.
func (u *User) Validate(team string) error {
	switch {
	case u.ID == "":
		return fmt.Errorf("%w: user without id", ErrBadObject)
	case u.Team != team:
		return fmt.Errorf("%w: user %s of team %q in team %q", ErrBadObject, u.ID, u.Team, team)
	case u.Updated <= 0:
		return fmt.Errorf("%w: user %s: updated must be positive, got %d", ErrBadObject, u.ID, u.Updated)
	}
	return nil
}

// Validate checks a channel from team's snapshot or events.
func (c *Channel) Validate(team string) error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w: channel without id", ErrBadObject)
	case c.Team != team:
		return fmt.Errorf("%w: channel %s of team %q in team %q", ErrBadObject, c.ID, c.Team, team)
	case c.Updated <= 0:
		return fmt.Errorf("%w: channel %s: updated must be positive, got %d", ErrBadObject, c.ID, c.Updated)
	case c.MemberCount < 0:
		return fmt.Errorf("%w: channel %s: negative member_count", ErrBadObject, c.ID)
	}
	return nil
}

// Validate checks the team object of team.
func (t *Team) Validate(team string) error {
	switch {
	case t.ID != team:
		return fmt.Errorf("%w: team %q where %q was asked", ErrBadObject, t.ID, team)
	case t.Updated <= 0:
		return fmt.Errorf("%w: team %s: updated must be positive, got %d", ErrBadObject, t.ID, t.Updated)
	case t.UserCount < 0 || t.ChannelCount < 0:
		return fmt.Errorf("%w: team %s: negative counts", ErrBadObject, t.ID)
	}
	return nil
}

// Validate checks one membership row of a snapshot page.
func (m *Membership) Validate() error {
	switch {
	case m.Channel == "" || m.User == "":
		return fmt.Errorf("%w: membership without channel or user", ErrBadObject)
	case m.Updated <= 0:
		return fmt.Errorf("%w: membership %s/%s: updated must be positive, got %d", ErrBadObject, m.Channel, m.User, m.Updated)
	}
	return nil
}
