package edge

import (
	"strconv"
	"sync"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
)

// hub is one team's set of sessions, and the point where that team's events meet them.
//
// The team's feed goroutine calls fan-out once per event, in seq order. lastSeq is the last
// event fanned out: a session registered under mu gets every event after it live, and (when
// resuming) reads everything up to it from JetStream, so the two meet with no gap and no
// duplicate. Fan-out never blocks on a session: send only appends to a bounded queue.
type hub struct {
	team string

	// mu guards every field below; held by fan-out and by (un)registration. Lock order of the
	// fan-out: hub.mu → session.mu → throttle.mu (see session.mu): fanout queues to each
	// session under mu. Nothing holding a session's or a throttle's mu takes a hub's;
	// cluster.mu, when held, comes before hub.mu (claimMoves). The team's cache.Store lock is
	// taken (read) under mu, and never calls back into the edge.
	mu         sync.Mutex
	sessions   map[*session]struct{}
	byUser     map[string][]*session
	users      []string // keys of byUser, rebuilt lazily (nil when stale)
	in         []bool   // fan-out's scratch: whether users[i] is in the event's channel
	lastSeq    int64
	dead       bool // unloaded: register must find a new hub
	recent     recentEvents
	limit      int // of recent: events
	limitBytes int // of recent: their bytes
	maxEvent   int // Config.MaxEventBytes
	// writers and turns: the fan-out hands the sessions it queued to to the writer pool in
	// batches (turns is the batch being gathered), one lock of the pool per batch, not per
	// session.
	writers *writerPool
	turns   []*session
}

func newHub(team string, seq int64) *hub {
	return &hub{team: team, sessions: make(map[*session]struct{}), byUser: make(map[string][]*session), lastSeq: seq}
}

// register adds s and returns the seq it will get events after. false: the hub is gone.
func (h *hub) register(s *session) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dead {
		return 0, false
	}
	h.sessions[s] = struct{}{}
	h.byUser[s.user] = append(h.byUser[s.user], s)
	h.users = nil
	return h.lastSeq, true
}

// seq is the last event fanned out.
func (h *hub) seq() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSeq
}

func (h *hub) unregister(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.sessions[s]; !ok {
		return
	}
	delete(h.sessions, s)
	list := h.byUser[s.user]
	for i, x := range list {
		if x == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(h.byUser, s.user)
	} else {
		h.byUser[s.user] = list
	}
	h.users = nil
}

// advance moves lastSeq up to seq (after a reload, whose snapshot absorbed events that were
// never fanned out).
func (h *hub) advance(seq int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSeq = max(h.lastSeq, seq)
	h.recent = recentEvents{} // what the reload absorbed was never fanned out: no longer contiguous
}

// snapshot returns the current sessions, for draining and reloads.
// size is how many sessions h has.
func (h *hub) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func (h *hub) snapshot() []*session {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*session, 0, len(h.sessions))
	for s := range h.sessions {
		out = append(out, s)
	}
	return out
}

// scope is who may see an event: everyone in the team (channel ""), or the members of channel,
// plus extra (the user a member_left removed, who was a member when it happened).
type scope struct {
	channel string
	extra   string
}

func scopeOf(st *cache.Store, ev *origin.Event) scope {
	switch ev.Type {
	case origin.EventMessage, origin.EventMemberJoined:
		return scope{channel: ev.ChannelID}
	case origin.EventMemberLeft:
		return scope{channel: ev.ChannelID, extra: ev.UserID}
	case origin.EventChannelCreated, origin.EventChannelChange, origin.EventChannelDeleted:
		id := ev.ChannelScope()
		private, ok := st.ChannelPrivacy(id) // the store's view is the newest: trust it first
		if !ok {
			private = ev.Channel == nil || ev.Channel.IsPrivate // unknown and no object: stay safe
		}
		if !private {
			return scope{}
		}
		return scope{channel: id}
	case origin.EventUserChange, origin.EventTeamChange:
		return scope{}
	}
	// An event type this edge does not know may concern a private channel: deliver it to no one.
	return scope{channel: "\x00unknown"}
}

// visibleRun reports, for events in seq order that the store has already applied, which of
// them user may see: the per-user form of the fan-out rule, used by replay. The fan-out judges
// an event by the memberships right after it; the store holds them after the last event, so
// the run is walked backwards from there, undoing the user's own joins and leaves (and channel
// creations) on the way: a message before the user left is seen, a message of a private channel
// from before the user joined is not.
func visibleRun(st *cache.Store, evs []*origin.Event, user string) []bool {
	member := make(map[string]bool) // membership at the current point of the walk, where it differs from the store
	isMember := func(ch string) bool {
		if m, ok := member[ch]; ok {
			return m
		}
		return st.IsMember(ch, user)
	}
	out := make([]bool, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		sc := scopeOf(st, ev)
		out[i] = sc.channel == "" || sc.extra == user || isMember(sc.channel)
		switch {
		case ev.Type == origin.EventMemberJoined && ev.UserID == user:
			member[ev.ChannelID] = false
		case ev.Type == origin.EventMemberLeft && ev.UserID == user:
			member[ev.ChannelID] = true
		case ev.Type == origin.EventChannelCreated && ev.Channel != nil && ev.Channel.Creator == user:
			member[ev.Channel.ID] = false
		}
	}
	return out
}

// fanout delivers one event to the sessions that may see it. It runs on the team's feed
// goroutine, after the event was applied to st, so membership changes take effect for the
// events that follow them (and for the member_joined itself).
func (h *hub) fanout(st *cache.Store, ev *origin.Event, mode AnnotateMode, m *metrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev.Seq <= h.lastSeq {
		return
	}
	h.lastSeq = ev.Seq
	if h.limit > 0 {
		h.recent.add(ev, h.limit, h.limitBytes)
	}
	if len(h.sessions) == 0 {
		return
	}
	if ev.Type == origin.EventUserChange && ev.User != nil && ev.User.Deleted {
		// Deactivated: the user's sessions end now, after this event (queued first below).
		defer func() {
			for _, s := range h.byUser[ev.User.ID] {
				s.goodbye(endAccountInactive, 0)
			}
		}()
	}
	sc := scopeOf(st, ev)
	var a *annotator
	var out float64
	defer func() {
		h.flushTurns()
		m.eventsOut.Add(out)
	}()
	deliver := func(s *session) {
		if a == nil { // encoded once, only if someone gets it
			a = eventAnnotator(st, ev, h.maxEvent, m, mode)
		}
		if s.sendEvent(a, &h.turns) {
			out++
		}
		if len(h.turns) >= turnBatch {
			h.flushTurns()
		}
	}
	if sc.channel == "" {
		for s := range h.sessions {
			deliver(s)
		}
		return
	}
	// Walk whichever is smaller: the users with sessions here, or the channel's members.
	if len(h.byUser) <= st.MemberCount(sc.channel) {
		if h.users == nil {
			h.users = make([]string, 0, len(h.byUser))
			for u := range h.byUser {
				h.users = append(h.users, u)
			}
		}
		if cap(h.in) < len(h.users) { // reused across events; AreMembers sets every entry
			h.in = make([]bool, len(h.users))
		}
		h.in = h.in[:len(h.users)]
		st.AreMembers(sc.channel, h.users, h.in)
		for i, u := range h.users {
			if h.in[i] || u == sc.extra {
				for _, s := range h.byUser[u] {
					deliver(s)
				}
			}
		}
		return
	}
	for _, u := range st.Members(sc.channel) {
		for _, s := range h.byUser[u] {
			deliver(s)
		}
	}
	if sc.extra != "" {
		for _, s := range h.byUser[sc.extra] {
			deliver(s)
		}
	}
}

// turnBatch is how many sessions the fan-out hands the writers at once: small enough that
// the first writes start while the rest of a big team is still being queued.
const turnBatch = 64

// flushTurns hands the gathered sessions to the writers. mu held.
func (h *hub) flushTurns() {
	if len(h.turns) > 0 {
		h.writers.scheduleMany(h.turns)
		clear(h.turns)
		h.turns = h.turns[:0]
	}
}

// eventFrame encodes an event as the frame every recipient gets. Annotations are appended per
// session before the closing brace, without re-encoding the event (see jit.go).
func eventFrame(ev *origin.Event) []byte {
	body, err := ev.MarshalJSON()
	if err != nil {
		return nil
	}
	b := make([]byte, 0, len(body)+48)
	b = append(b, `{"type":"event","seq":`...)
	b = strconv.AppendInt(b, ev.Seq, 10)
	b = append(b, `,"event":`...)
	b = append(b, body...)
	return append(b, '}')
}
