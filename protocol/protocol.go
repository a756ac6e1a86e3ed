package protocol

import "time"

// Subprotocol is the WebSocket subprotocol of docs/protocol.md. A client that offers no
// subprotocol is spoken to in it; one that offers others but not this is refused at the
// handshake (section 2).
const Subprotocol = "weft.v1"

// Frame types: the "type" of every frame the server sends (section 3). Client frames are
// requests and carry no type.
const (
	FrameHello   = "hello"
	FrameGoodbye = "goodbye"
	FrameReply   = "reply"
	FrameEvent   = "event"
)

// Hello is the first frame of every connection (section 3).
type Hello struct {
	Type     string `json:"type"` // FrameHello
	Protocol string `json:"protocol"`
	Session  string `json:"session"`
	Team     string `json:"team"`
	User     string `json:"user"`
	Node     string `json:"node"`
	// Region is the serving edge's region: another region than the client's while its own
	// has no serving edge (docs/architecture.md, "Regions").
	Region string `json:"region"`
	// Seq is where the event stream of this connection starts: the team's sequence at
	// connection time, or the since of a resumed connection.
	Seq         int64 `json:"seq"`
	Resumed     bool  `json:"resumed"`
	HeartbeatMS int64 `json:"heartbeat_ms"`
}

// Goodbye reasons (section 3): why the server closed a connection on purpose.
const (
	ReasonDraining     = "draining"
	ReasonOverloaded   = "overloaded"
	ReasonSlowConsumer = "slow_consumer"
	ReasonMoved        = "moved"
	ReasonPolicy       = "policy"
	// ReasonTokenExpired: the session's token expired (its exp, plus the verifiers' leeway).
	// A client reconnects with a fresh token; with the same one it is refused (401).
	ReasonTokenExpired = "token_expired"
	// ReasonAccountInactive: the user was deactivated at the origin. A client does not
	// reconnect: it would be refused (403 account_inactive).
	ReasonAccountInactive = "account_inactive"
)

// CutTooLarge is an event frame's "cut" (section 5): the event was over the edge's bound on an
// event's size, so it was sent cut (a message's text shortened, an object replaced by its ID);
// the client asks for the object when it needs it.
const CutTooLarge = "too_large"

// Goodbye is the frame the server sends before it closes a connection on purpose (section 3).
type Goodbye struct {
	Type             string `json:"type"` // FrameGoodbye
	Reason           string `json:"reason"`
	ReconnectAfterMS int64  `json:"reconnect_after_ms"`
}

// ReconnectAfter is how long the server asked the client to wait before it reconnects.
func (g *Goodbye) ReconnectAfter() time.Duration {
	return time.Duration(g.ReconnectAfterMS) * time.Millisecond
}

// WebSocket close codes of weft's own (section 3). The others a client may see are standard:
// 1001 (going away) after goodbye draining, 1008 (policy violation) after goodbye policy, 1009
// (message too big) for a frame past the hard read limit.
const (
	CloseSlowConsumer    = 4008
	CloseMoved           = 4009
	CloseTokenExpired    = 4010
	CloseAccountInactive = 4011
)

// Event types (section 5): the "type" of the event object an event frame carries.
const (
	EventUserChange     = "user_change"
	EventTeamChange     = "team_change"
	EventChannelCreated = "channel_created"
	EventChannelChange  = "channel_change"
	EventChannelDeleted = "channel_deleted"
	EventMemberJoined   = "member_joined"
	EventMemberLeft     = "member_left"
	EventMessage        = "message"
)

// Headers a proxy and an edge exchange (docs/architecture.md). Clients neither send nor see
// them: a proxy drops a client's own HeaderExcluded, HeaderRegion and HeaderRouted, and an
// edge ignores the first two unless HeaderRouted signs them.
const (
	// HeaderExcluded carries the edges a proxy has marked down and routes around,
	// comma-separated: the edge checks ownership on the same ring the proxy routed by.
	HeaderExcluded = "Weft-Excluded"
	// HeaderRefused on a 503 says the edge refuses all new work (it is draining): a proxy
	// tries the next owner instead of passing the refusal on.
	HeaderRefused = "Weft-Refused"
	// HeaderRegion names the region of the proxy that routed the request, which is its
	// client's region. An edge of another region (the proxy fell back to it: its own region
	// had no serving edge) serves the client as a visitor and sends it home, paced, when that
	// region serves again. Absent, or the edge's own region: the client is at home.
	HeaderRegion = "Weft-Region"
	// HeaderRouted signs HeaderExcluded and HeaderRegion with the request's time, path and
	// token (internal/routesig): an edge acts on them only with a good signature, so a client
	// that talks to an edge directly cannot make it take a team its ring gives another edge.
	HeaderRouted = "Weft-Routed"
)

// HeaderDrain must be on an operator's POST /drain to an edge (any value; `weft drain` sends
// it): a custom header keeps a browser page of another site from sending the request, which
// would need a CORS preflight the operator listener never answers.
const HeaderDrain = "Weft-Drain"
