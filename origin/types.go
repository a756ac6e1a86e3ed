package origin

import "context"

// User is a member of a team, as docs/protocol.md section 4 defines it.
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
	Updated     int64  `json:"updated"`
}

// Team is a workspace: the unit of caching, routing and event ordering.
type Team struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Domain       string `json:"domain"`
	UserCount    int    `json:"user_count"`
	ChannelCount int    `json:"channel_count"`
	Updated      int64  `json:"updated"`
}

// Membership says that a user is in a channel, at a version.
type Membership struct {
	Channel string `json:"channel"`
	User    string `json:"user"`
	Updated int64  `json:"updated"`
}

// TeamInfo answers GET /origin/v1/teams/{team}. Seq is the last event sequence the origin has
// published for the team: a snapshot read after it reflects at least every event up to Seq.
type TeamInfo struct {
	Team Team  `json:"team"`
	Seq  int64 `json:"seq"`
}

// UsersPage, ChannelsPage and MembershipsPage are one page of a paged origin listing.
// NextCursor is "" on the last page.
type UsersPage struct {
	Users      []User `json:"users"`
	NextCursor string `json:"next_cursor"`
}

type ChannelsPage struct {
	Channels   []Channel `json:"channels"`
	NextCursor string    `json:"next_cursor"`
}

type MembershipsPage struct {
	Memberships []Membership `json:"memberships"`
	NextCursor  string       `json:"next_cursor"`
}

// Publisher publishes one team event on the bus (NATS subject weft.events.<team>, message ID
// "<team>:<seq>"). It returns only once the event is stored, so a caller that retries the
// same event after an error cannot create a duplicate: the bus drops it by its message ID.
// The pubsub package implements it.
type Publisher interface {
	PublishEvent(ctx context.Context, ev *Event) error
}
