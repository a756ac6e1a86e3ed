package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// errQueueFull ends a connection whose events the caller is not taking: the run loop resumes
// once the queue has drained, so nothing is lost and replies never wait behind events.
var errQueueFull = errors.New("weft: event queue full: the caller is not reading Events")

// received takes one event frame off a connection: it drops what was handed over already,
// merges the event's objects into the Store and queues the event.
func (c *Client) received(cn *conn, f *frame) error {
	if f.Seq <= c.pos.Load() {
		c.stats.duplicates.Add(1)
		return nil
	}
	ev, err := decodeEvent(f.Seq, f.Event, f.Annotations)
	if err != nil {
		// The stream has a hole we cannot fill by reading on: reconnect and resume.
		return err
	}
	c.store.apply(ev)
	c.pos.Store(f.Seq)
	c.stats.events.Add(1)
	if c.queue.push(ev) > c.opts.EventQueue {
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

// decodeEvent reads an event frame's event and annotations.
func decodeEvent(seq int64, raw json.RawMessage, ann Annotations) (*Event, error) {
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("weft: event %d: %w", seq, err)
	}
	if w.Type == "" {
		return nil, fmt.Errorf("weft: event %d has no type", seq)
	}
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
		return nil, fmt.Errorf("weft: event %d (%s): %w", seq, w.Type, err)
	}
	// The annotation maps are keyed by ID; an entry whose object is missing or names another
	// ID would put the wrong object in the Store.
	for id, u := range ann.Users {
		if u == nil || u.ID != id {
			return nil, fmt.Errorf("weft: event %d: annotation users[%q] is not that user", seq, id)
		}
	}
	for id, ch := range ann.Channels {
		if ch == nil || ch.ID != id {
			return nil, fmt.Errorf("weft: event %d: annotation channels[%q] is not that channel", seq, id)
		}
	}
	return ev, nil
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
}

func (q *eventQueue) init() {
	q.signal, q.drained, q.stopped = make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
}

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

// waitBelow waits until the queue holds at most n events; false when ctx ended first.
func (q *eventQueue) waitBelow(ctx context.Context, n int) bool {
	for q.len() > n {
		select {
		case <-q.drained:
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
