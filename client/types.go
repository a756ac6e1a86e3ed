package client

import (
	"encoding/json"

	"github.com/weft-edge/weft/protocol"
)

// The objects of docs/protocol.md section 4, package protocol's types under the client's names.
// Updated is the object's version: the origin raises it on every change, and the Store keeps the
// highest it has seen.
type (
	// User is a member of a team.
	User = protocol.User
	// Channel is a conversation in a team; Created is RFC 3339.
	Channel = protocol.Channel
	// Team is a workspace.
	Team = protocol.Team
)

// The wire vocabulary is package protocol's; the client re-exports what its callers see.

// Hello is the first frame of every connection (docs/protocol.md section 3).
type Hello = protocol.Hello

// Goodbye reasons (docs/protocol.md section 3).
const (
	ReasonDraining     = protocol.ReasonDraining
	ReasonOverloaded   = protocol.ReasonOverloaded
	ReasonSlowConsumer = protocol.ReasonSlowConsumer
	ReasonMoved        = protocol.ReasonMoved
	ReasonPolicy       = protocol.ReasonPolicy
	// ReasonTokenExpired: the Client reconnects at once, with a fresh token from TokenFunc
	// (with a fixed Token it is refused, and Err says so).
	ReasonTokenExpired = protocol.ReasonTokenExpired
	// ReasonAccountInactive: the user was deactivated; the Client stops (Err).
	ReasonAccountInactive = protocol.ReasonAccountInactive
)

// Goodbye is what the server said before it closed a connection on purpose.
type Goodbye = protocol.Goodbye

// Error codes (docs/protocol.md section 8).
const (
	CodeInvalidRequest    = protocol.CodeInvalidRequest
	CodeUnknownMethod     = protocol.CodeUnknownMethod
	CodeNotFound          = protocol.CodeNotFound
	CodeInvalidAuth       = protocol.CodeInvalidAuth
	CodeAccountInactive   = protocol.CodeAccountInactive
	CodeRateLimited       = protocol.CodeRateLimited
	CodeOverloaded        = protocol.CodeOverloaded
	CodeOriginUnavailable = protocol.CodeOriginUnavailable
	CodeTooLarge          = protocol.CodeTooLarge
	CodeInternal          = protocol.CodeInternal
)

// Error is an error the server answered: a reply with ok false, or a refused handshake (then
// Status is its HTTP status). Use errors.As to read it; RetryAfter says when to try again.
type Error = protocol.Error

// Event types (docs/protocol.md section 5).
const (
	EventUserChange     = protocol.EventUserChange
	EventTeamChange     = protocol.EventTeamChange
	EventChannelCreated = protocol.EventChannelCreated
	EventChannelChange  = protocol.EventChannelChange
	EventChannelDeleted = protocol.EventChannelDeleted
	EventMemberJoined   = protocol.EventMemberJoined
	EventMemberLeft     = protocol.EventMemberLeft
	EventMessage        = protocol.EventMessage
)

// Event is one event of the team's stream, as the client hands it to the caller: by then its
// annotations and the objects it carries are in the client's Store.
//
// An event whose body the client cannot read (a field of the wrong type, no type at all) is
// still handed over, in its place in the stream, with only Seq, Type (empty when the type itself
// was unreadable), Annotations and Raw set; the client logs a warning. Reconnecting instead would
// only be replayed the same event.
type Event struct {
	Seq  int64
	Type string

	// The objects an event carries: User for user_change, Team for team_change, Channel for
	// channel_created and channel_change.
	User    *User
	Team    *Team
	Channel *Channel

	// ChannelID is the channel the event is about (every type but user_change and
	// team_change; for channel_created and channel_change it is Channel.ID). UserID is the
	// user of member_joined, member_left and message.
	ChannelID string
	UserID    string

	// Message fields.
	TS          string
	Text        string
	ClientMsgID string
	Mentions    []string

	// Annotations are the objects the edge attached because this connection had not recently
	// been sent them (docs/protocol.md section 6). They are already merged into the Store.
	Annotations Annotations

	// Raw is the event object exactly as the server sent it.
	Raw json.RawMessage

	// Cut is why the server sent the event cut, "" when whole: CutTooLarge for one over the
	// edge's bound on an event's size. A cut message has the head of its text; a cut
	// user_change, channel_created, channel_change or team_change has the object's ID only
	// (UserID, ChannelID), and the Store forgets the stale copy it had: ask for it
	// (UsersInfo, ChannelsInfo) when you need it.
	Cut string
}

// CutTooLarge is Event.Cut for an event over the edge's bound on an event's size.
const CutTooLarge = protocol.CutTooLarge

// Annotations are objects attached to an event, keyed by ID.
type Annotations struct {
	Users    map[string]*User    `json:"users,omitempty"`
	Channels map[string]*Channel `json:"channels,omitempty"`
}

// Len is the number of objects attached.
func (a Annotations) Len() int { return len(a.Users) + len(a.Channels) }

// Names returns the IDs of the users an event names (its sender or subject and the users it
// mentions) and the channel it names: what a client needs to render it.
func (e *Event) Names() (users []string, channel string) {
	switch e.Type {
	case EventMessage:
		users = make([]string, 0, 1+len(e.Mentions))
		users = append(users, e.UserID)
		users = append(users, e.Mentions...)
	case EventMemberJoined, EventMemberLeft:
		users = []string{e.UserID}
	}
	switch e.Type {
	case EventMessage, EventMemberJoined, EventMemberLeft, EventChannelCreated, EventChannelChange:
		channel = e.ChannelID
	}
	return users, channel
}

// The results of docs/protocol.md section 4's methods.

// Boot is the lazy boot payload: the caller, the team and only the caller's channels.
type Boot struct {
	Self     User      `json:"self"`
	Team     Team      `json:"team"`
	Channels []Channel `json:"channels"`
	Seq      int64     `json:"seq"`
}

// UsersInfo is the result of users.info.
type UsersInfo struct {
	Users   []User   `json:"users"`
	Missing []string `json:"missing"`
}

// UsersList is one page of users.list.
type UsersList struct {
	Users      []User `json:"users"`
	NextCursor string `json:"next_cursor"`
}

// ChannelsInfo is the result of channels.info.
type ChannelsInfo struct {
	Channels []Channel `json:"channels"`
	Missing  []string  `json:"missing"`
}

// IDPage is one page of IDs: channels.members' members or users.channels' channels.
type IDPage struct {
	IDs        []string
	NextCursor string
}

// AutocompleteQuery is the params of autocomplete. Types nil means both users and channels;
// Limit 0 means the server's default (10).
type AutocompleteQuery struct {
	Query           string   `json:"query"`
	Types           []string `json:"types,omitempty"`
	Limit           int      `json:"limit,omitempty"`
	IncludeInactive bool     `json:"include_inactive,omitempty"`
}

// AutocompleteResult is one Quick Switcher result, best first.
type AutocompleteResult struct {
	Type  string  `json:"type"` // "user" or "channel"
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Label string  `json:"label"`
	Score float64 `json:"score"`
}
