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
	// Listings announces the newer forms of the listings the origin serves (docs/origin.md,
	// "Fewer round trips"). nil: an origin of the first contract, walked a page per request.
	Listings *Listings `json:"listings,omitempty"`
}

// MaxPartitions is the most partitions of one listing weft takes: an origin that announces more
// gives a bad answer (each partition is a request in flight, and a connection over HTTP/1.1).
const MaxPartitions = 64

// Listings is what an origin announces, in its team answer, of the newer forms of its listings.
// Either may be announced without the other.
type Listings struct {
	// Stream: a listing request with stream=1 may be answered with every page from its cursor on,
	// one page per line (application/x-ndjson).
	Stream bool `json:"stream"`
	// Partitions is how many disjoint partitions each listing is split into, each walked on its
	// own with partition=i&partitions=n. 0 or 1: one (the whole listing).
	Partitions ListingPartitions `json:"partitions"`
}

// ListingPartitions is the partition count of each listing.
type ListingPartitions struct {
	Users       int `json:"users"`
	Channels    int `json:"channels"`
	Memberships int `json:"memberships"`
}

// ListRequest is one request of a listing: from Cursor ("" the start), pages of up to Limit rows.
// The zero value of the other fields is the first contract's page request.
type ListRequest struct {
	Cursor string
	Limit  int
	// Partition i of Partitions (0 <= i < Partitions) of the listing, as the origin announced
	// them; Partitions <= 1 asks for the whole listing. A cursor carries its partition, so only
	// the first request of a partition needs these, but they are sent with every one.
	Partition, Partitions int
	// Stream asks for every page from Cursor on in one answer. The origin may end the answer
	// after any page; the caller goes on from that page's next_cursor.
	Stream bool
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
