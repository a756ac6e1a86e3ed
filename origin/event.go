package origin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/weft-edge/weft/protocol"
)

// Event types of docs/protocol.md section 5: package protocol's, named here too because the
// origin contract defines events.
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

// Event is one change in a team, in the team's gap-free sequence.
//
// On the wire the fields `user`, `channel` and `team` change shape with the type: `user` is a
// User object in user_change and a user ID in message and member events; `channel` is a Channel
// object in channel_created and channel_change and an ID elsewhere; `team` is the team ID of the
// envelope except in team_change, where it is the Team object (whose id is the envelope's team).
// Event keeps each shape in its own field and MarshalJSON/UnmarshalJSON map them.
type Event struct {
	Team string // team ID, for every type
	Seq  int64
	Type string

	User     *User    // user_change
	TeamInfo *Team    // team_change
	Channel  *Channel // channel_created, channel_change

	ChannelID   string // channel_deleted, member_joined, member_left, message
	UserID      string // member_joined, member_left, message
	TS          string // message
	Text        string // message
	ClientMsgID string // message, optional
	Mentions    []string

	// Updated is the version of the change for events that carry no object (member_joined,
	// member_left, channel_deleted). It is an additive field of weft's origin contract; an
	// origin that omits it leaves it 0 and consumers treat the event as newer than any page.
	Updated int64

	// Size is the length in bytes of the encoding the event was decoded from (DecodeEvent); 0
	// for an event made in memory. It is not part of the wire form: consumers bound the
	// memory they hold events in by it.
	Size int
}

// ErrBadEvent wraps every reason an event is refused.
var ErrBadEvent = errors.New("origin: bad event")

// wireEvent is the JSON shape: the shape-shifting fields stay raw until the type is known.
type wireEvent struct {
	Team        json.RawMessage `json:"team"`
	Seq         int64           `json:"seq"`
	Type        string          `json:"type"`
	User        json.RawMessage `json:"user,omitempty"`
	Channel     json.RawMessage `json:"channel,omitempty"`
	TS          string          `json:"ts,omitempty"`
	Text        string          `json:"text,omitempty"`
	ClientMsgID string          `json:"client_msg_id,omitempty"`
	Mentions    []string        `json:"mentions,omitempty"`
	Updated     int64           `json:"updated,omitempty"`
}

// MarshalJSON writes the wire shape of docs/origin.md.
func (e *Event) MarshalJSON() ([]byte, error) {
	w := wireEvent{Seq: e.Seq, Type: e.Type, TS: e.TS, Text: e.Text, ClientMsgID: e.ClientMsgID,
		Mentions: e.Mentions, Updated: e.Updated}
	var err error
	if e.Type == EventTeamChange && e.TeamInfo != nil {
		w.Team, err = json.Marshal(e.TeamInfo)
	} else {
		w.Team, err = json.Marshal(e.Team)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case e.User != nil:
		w.User, err = json.Marshal(e.User)
	case e.UserID != "":
		w.User, err = json.Marshal(e.UserID)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case e.Channel != nil:
		w.Channel, err = json.Marshal(e.Channel)
	case e.ChannelID != "":
		w.Channel, err = json.Marshal(e.ChannelID)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(&w)
}

// UnmarshalJSON reads the wire shape; it checks shapes, not meaning (see Validate).
func (e *Event) UnmarshalJSON(data []byte) error {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	*e = Event{Seq: w.Seq, Type: w.Type, TS: w.TS, Text: w.Text, ClientMsgID: w.ClientMsgID,
		Mentions: w.Mentions, Updated: w.Updated}
	if isObject(w.Team) {
		e.TeamInfo = new(Team)
		if err := json.Unmarshal(w.Team, e.TeamInfo); err != nil {
			return fmt.Errorf("%w: team: %v", ErrBadEvent, err)
		}
		e.Team = e.TeamInfo.ID
	} else if len(w.Team) > 0 {
		if err := json.Unmarshal(w.Team, &e.Team); err != nil {
			return fmt.Errorf("%w: team: %v", ErrBadEvent, err)
		}
	}
	if isObject(w.User) {
		e.User = new(User)
		if err := json.Unmarshal(w.User, e.User); err != nil {
			return fmt.Errorf("%w: user: %v", ErrBadEvent, err)
		}
	} else if len(w.User) > 0 && !isNull(w.User) {
		if err := json.Unmarshal(w.User, &e.UserID); err != nil {
			return fmt.Errorf("%w: user: %v", ErrBadEvent, err)
		}
	}
	if isObject(w.Channel) {
		e.Channel = new(Channel)
		if err := json.Unmarshal(w.Channel, e.Channel); err != nil {
			return fmt.Errorf("%w: channel: %v", ErrBadEvent, err)
		}
	} else if len(w.Channel) > 0 && !isNull(w.Channel) {
		if err := json.Unmarshal(w.Channel, &e.ChannelID); err != nil {
			return fmt.Errorf("%w: channel: %v", ErrBadEvent, err)
		}
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// DecodeEvent parses one event published for team and validates it.
func DecodeEvent(team string, data []byte) (*Event, error) {
	ev := new(Event)
	if err := ev.UnmarshalJSON(data); err != nil { // direct: json.Unmarshal would not wrap syntax errors
		return nil, err
	}
	if err := ev.Validate(team); err != nil {
		return nil, err
	}
	ev.Size = len(data)
	return ev, nil
}

// Validate checks that the event belongs to team (when team is not "") and carries what its
// type needs. Unknown types are valid (the contract may add types); consumers skip what they
// do not understand.
func (e *Event) Validate(team string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s seq %d: %s", ErrBadEvent, e.Type, e.Seq, fmt.Sprintf(format, args...))
	}
	if e.Team == "" {
		return bad("missing team")
	}
	if team != "" && e.Team != team {
		return bad("team %q on the stream of team %q", e.Team, team)
	}
	if e.Seq <= 0 {
		return bad("seq must be positive")
	}
	if e.Updated < 0 {
		return bad("negative updated")
	}
	switch e.Type {
	case EventUserChange:
		if e.User == nil {
			return bad("missing user object")
		}
		return e.User.Validate(e.Team)
	case EventTeamChange:
		if e.TeamInfo == nil {
			return bad("missing team object")
		}
		return e.TeamInfo.Validate(e.Team)
	case EventChannelCreated, EventChannelChange:
		if e.Channel == nil {
			return bad("missing channel object")
		}
		return e.Channel.Validate(e.Team)
	case EventChannelDeleted:
		if e.ChannelID == "" {
			return bad("missing channel")
		}
	case EventMemberJoined, EventMemberLeft:
		if e.ChannelID == "" || e.UserID == "" {
			return bad("missing channel or user")
		}
	case EventMessage:
		if e.ChannelID == "" || e.UserID == "" {
			return bad("missing channel or user")
		}
	case "":
		return bad("missing type")
	}
	return nil
}

// ChannelScope is the channel an event belongs to, or "" for a team-wide event. Channel-scoped
// events go only to the channel's members.
func (e *Event) ChannelScope() string {
	switch e.Type {
	case EventMessage, EventMemberJoined, EventMemberLeft, EventChannelDeleted:
		return e.ChannelID
	case EventChannelCreated, EventChannelChange:
		if e.Channel != nil {
			return e.Channel.ID
		}
	}
	return ""
}

// ErrBadObject wraps every reason an object from the origin is refused. The objects and their
// Validate methods are package protocol's (see types.go).
var ErrBadObject = protocol.ErrBadObject

// Subject is the NATS subject that carries team's events.
func Subject(team string) string { return "weft.events." + team }

// MsgID is the JetStream de-duplication ID of an event.
func (e *Event) MsgID() string { return fmt.Sprintf("%s:%d", e.Team, e.Seq) }
