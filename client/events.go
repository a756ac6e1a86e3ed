package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// errQueueFull ends a connection whose events the caller is not taking: the run loop resumes
// once the queue has drained (or a request needs a connection), so nothing is lost.
var errQueueFull = errors.New("weft: event queue full: the caller is not reading Events")

// received takes one event frame off a connection: it drops what was queued already, merges
// the event's objects into the Store and queues the event.
func (c *Client) received(cn *conn, f *frame) error {
	if f.Seq <= c.pos.Load() {
		c.stats.duplicates.Add(1)
		return nil
	}
	ev, err := decodeEvent(f.Seq, f.Event, f.Annotations)
	ev.Cut = f.Cut
	if err != nil {
		// The envelope was read, so the event's place in the stream is known; only its body
		// is not. Reconnecting would replay the same event and fail again, forever: hand it
		// over with what could be read (type, raw JSON, annotations) and go on.
		c.log.Warn("weft: unreadable event handed over with its type and raw JSON only", "seq", f.Seq, "error", err)
	}
	c.store.apply(ev)
	c.pos.Store(f.Seq)
	c.stats.events.Add(1)
	n := c.queue.push(ev)
	// Past the bound, the connection is dropped unless a request waits for a connection or is
	// in flight on this one: its reply may be behind these events, and its caller may be the
	// Events reader, which drains nothing until the reply comes. Twice the bound is the limit
	// even then. Waiters are read before users: Client.current lowers the first only after
	// raising the second.
	if n > 2*c.opts.EventQueue || n > c.opts.EventQueue && !c.queue.anyWaiting() && cn.users.Load() == 0 {
		return errQueueFull
	}
	return nil
}

// wireEvent is an event's JSON: team, user and channel are IDs or objects by type.
type wireEvent struct {
	Type        string          `json:"type"`
	Team        json.RawMessage `json:"team"`
	User        json.RawMessage `json:"user"`
	Channel     json.RawMessage `json:"channel"`
	TS          string          `json:"ts"`
	Text        string          `json:"text"`
	ClientMsgID string          `json:"client_msg_id"`
	Mentions    []string        `json:"mentions"`
}

// decodeEvent reads an event frame's event and annotations. It always returns an event, for
// the stream must go on: when the body cannot be read, err says why and the event has only
// Seq, Type (as far as it could be read), Raw and the annotations. Annotation entries that
// cannot be read, or that are not the object their key names, are dropped either way.
func decodeEvent(seq int64, raw, rawAnn json.RawMessage) (*Event, error) {
	ann := decodeAnnotations(rawAnn)
	bare := &Event{Seq: seq, Annotations: ann, Raw: raw}
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		// A field of the wrong type does not stop Unmarshal from filling the others: the
		// type is kept when it is a string.
		bare.Type = w.Type
		return bare, fmt.Errorf("weft: event %d: %w", seq, err)
	}
	if w.Type == "" {
		return bare, fmt.Errorf("weft: event %d has no type", seq)
	}
	bare.Type = w.Type
	ev := &Event{Seq: seq, Type: w.Type, TS: w.TS, Text: w.Text, ClientMsgID: w.ClientMsgID,
		Mentions: w.Mentions, Annotations: ann, Raw: raw}
	var err error
	if isObject(w.User) {
		ev.User = new(User)
		err = json.Unmarshal(w.User, ev.User)
	} else {
		err = idOf(w.User, &ev.UserID)
	}
	if err == nil && isObject(w.Channel) {
		ev.Channel = new(Channel)
		if err = json.Unmarshal(w.Channel, ev.Channel); err == nil {
			ev.ChannelID = ev.Channel.ID
		}
	} else if err == nil {
		err = idOf(w.Channel, &ev.ChannelID)
	}
	if err == nil && isObject(w.Team) {
		ev.Team = new(Team)
		err = json.Unmarshal(w.Team, ev.Team)
	}
	if err != nil {
		// Half an event (a message without its sender, a user_change without its user) is
		// worse than one plainly marked unreadable: none of its fields are kept.
		return bare, fmt.Errorf("weft: event %d (%s): %w", seq, w.Type, err)
	}
	return ev, nil
}

// decodeAnnotations reads an event's annotations entry by entry, keeping the ones that are the
// object their key names: an entry that is not would put the wrong object in the Store, and
// one bad entry is no reason to lose the others (the edge will not attach them again).
func decodeAnnotations(raw json.RawMessage) Annotations {
	var wire struct {
		Users    map[string]json.RawMessage `json:"users"`
		Channels map[string]json.RawMessage `json:"channels"`
	}
	// Unmarshal fills what it can read; a part that is not a map stays nil and is dropped.
	_ = json.Unmarshal(raw, &wire)
	var a Annotations
	for id, r := range wire.Users {
		var u User
		if id == "" || json.Unmarshal(r, &u) != nil || u.ID != id {
			continue
		}
		if a.Users == nil {
			a.Users = make(map[string]*User, len(wire.Users))
		}
		a.Users[id] = &u
	}
	for id, r := range wire.Channels {
		var ch Channel
		if id == "" || json.Unmarshal(r, &ch) != nil || ch.ID != id {
			continue
		}
		if a.Channels == nil {
			a.Channels = make(map[string]*Channel, len(wire.Channels))
		}
		a.Channels[id] = &ch
	}
	return a
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

func idOf(raw json.RawMessage, dst *string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// eventQueue is the events received and not yet handed over. It is unbounded by itself: the
// reader checks its length (see received) so that a full queue ends the connection rather than
// blocking the reader, which would block replies too.
type eventQueue struct {
	mu      sync.Mutex
	q       []*Event      // not yet taken by dispatch
	n       int           // not yet handed over: q and the rest of dispatch's batch
	signal  chan struct{} // a push happened (capacity 1)
	drained chan struct{} // a pop happened (capacity 1)
	stopped chan struct{} // closed when dispatch returned

	waiters atomic.Int64  // requests waiting for a connection (see Client.current)
	wake    chan struct{} // waiters went up (capacity 1)
}

func (q *eventQueue) init() {
	q.signal, q.drained, q.stopped = make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	q.wake = make(chan struct{}, 1)
}

// startWaiting counts a request waiting for a connection and wakes waitBelow.
func (q *eventQueue) startWaiting() {
	q.waiters.Add(1)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) doneWaiting() { q.waiters.Add(-1) }

func (q *eventQueue) anyWaiting() bool { return q.waiters.Load() > 0 }

func (q *eventQueue) push(ev *Event) int {
	q.mu.Lock()
	q.q = append(q.q, ev)
	q.n++
	n := q.n
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return n
}

func (q *eventQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// handed counts one event handed over.
func (q *eventQueue) handed() {
	q.mu.Lock()
	q.n--
	q.mu.Unlock()
	select {
	case q.drained <- struct{}{}:
	default:
	}
}

// waitBelow waits until the queue holds at most n events, or until a request waits for a
// connection: that request may come from the Events reader, which cannot drain the queue
// before it returns, so waiting on would deadlock. False when ctx ended first.
func (q *eventQueue) waitBelow(ctx context.Context, n int) bool {
	for q.len() > n && !q.anyWaiting() {
		select {
		case <-q.drained:
		case <-q.wake:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// dispatch hands queued events to the Events channel, in order, until the client is closed;
// then it closes the channel.
func (c *Client) dispatch() {
	q := &c.queue
	defer close(q.stopped)
	defer close(c.events)
	for {
		q.mu.Lock()
		batch := q.q
		q.q = nil
		q.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-q.signal:
				continue
			case <-c.ctx.Done():
				return
			}
		}
		for i, ev := range batch {
			select {
			case c.events <- ev:
				batch[i] = nil
				q.handed()
			case <-c.ctx.Done():
				return
			}
		}
	}
}
