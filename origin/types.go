package origin

import (
	"context"

	"github.com/weft-edge/weft/protocol"
)

// The objects of the contract are package protocol's, where the edge and the client name them
// too; the aliases keep origin.User and the others working (same types, same methods, including
// Validate).
type (
	// User is a member of a team, as docs/protocol.md section 4 defines it.
	User = protocol.User
	// Channel is a conversation in a team.
	Channel = protocol.Channel
	// Team is a workspace: the unit of caching, routing and event ordering.
	Team = protocol.Team
	// Membership says that a user is in a channel, at a version.
	Membership = protocol.Membership
)

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
