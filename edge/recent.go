package edge

import (
	"context"
	"time"

	"github.com/weft-edge/weft/origin"
)

// recentEvents is a team's latest events (at least the last limit, at most twice that, and
// within twice limitBytes of their size on the bus), contiguous by seq, kept so that a resume
// replays from memory instead of the stream. In a reconnect storm thousands of clients of the
// same teams resume within seconds; each stream replay is a binary search of the stream (about
// twenty round trips to NATS), all through the one NATS server, and that was measured to choke
// a storm of 15,000. One stream read per team (coalesced) fills what the resumes need.
//
// It lives in the team's hub and is guarded by the hub's mutex.
type recentEvents struct {
	lo    int64           // seq of evs[0]
	evs   []*origin.Event // evs[i].Seq == lo+i
	bytes int             // sum of eventCost over evs
}

// eventCost is what an event held counts against the byte bound: its size on the bus, and a
// little for the structs around it (an event made in memory has no size).
func eventCost(ev *origin.Event) int { return ev.Size + 128 }

// add appends ev, the next event fanned out. A gap (a reload skipped events) starts over.
func (r *recentEvents) add(ev *origin.Event, limit, limitBytes int) {
	if len(r.evs) > 0 && ev.Seq != r.lo+int64(len(r.evs)) {
		r.evs, r.bytes = r.evs[:0], 0
	}
	if len(r.evs) == 0 {
		r.lo = ev.Seq
	}
	r.evs = append(r.evs, ev)
	r.bytes += eventCost(ev)
	// Trimmed in batches: up to twice the bounds are held, then the oldest are dropped at
	// once, down to the bounds, so each event costs one append rather than a copy of the
	// window.
	if len(r.evs) >= 2*limit || r.bytes > 2*limitBytes {
		over := 0
		for over < len(r.evs)-1 && (len(r.evs)-over > limit || r.bytes > limitBytes) {
			r.bytes -= eventCost(r.evs[over])
			over++
		}
		r.evs = append(r.evs[:0:0], r.evs[over:]...) // a fresh array: the old one is freed
		r.lo += int64(over)
	}
}

// rangeOf returns the events with since < seq <= upto, if all are held.
func (r *recentEvents) rangeOf(since, upto int64) ([]*origin.Event, bool) {
	if upto <= since {
		return nil, true
	}
	hi := r.lo + int64(len(r.evs)) - 1
	if len(r.evs) == 0 || since+1 < r.lo || upto > hi {
		return nil, false
	}
	return append([]*origin.Event(nil), r.evs[since+1-r.lo:upto+1-r.lo]...), true
}

// fill merges evs (contiguous, ending at or before what is held) in front of what is held,
// as many of the newest of them as the bounds leave room for.
func (r *recentEvents) fill(evs []*origin.Event, limit, limitBytes int) {
	if len(evs) == 0 {
		return
	}
	held := r.evs
	var front []*origin.Event
	if len(held) == 0 {
		front = evs
	} else {
		// Take the fetched events up to just before what is held; they must reach it.
		for _, ev := range evs {
			if ev.Seq < r.lo {
				front = append(front, ev)
			}
		}
		if len(front) == 0 || front[len(front)-1].Seq != r.lo-1 {
			return
		}
	}
	// The newest of front that fit, counting back from what is held (at least one of a first
	// fill, as add keeps one).
	room, roomBytes := max(limit-len(held), 0), limitBytes-r.bytes
	if len(held) == 0 {
		room = len(front) // a first fill is what the resumes of a storm asked for: add trims later
	}
	take, cost := 0, 0
	for i := len(front) - 1; i >= 0 && take < room; i-- {
		c := eventCost(front[i])
		if cost+c > roomBytes && !(len(held) == 0 && take == 0) {
			break
		}
		take, cost = take+1, cost+c
	}
	if take == 0 {
		return
	}
	front = front[len(front)-take:]
	r.evs = append(append([]*origin.Event(nil), front...), held...)
	r.lo = front[0].Seq
	r.bytes += cost
}

// prefill is how many events before a resume's range a fill fetches too, so that the clients
// of a team that resume from slightly different places share one stream read.
const prefill = 256

// replayEvents returns team's events with since < seq <= upto: from the hub's memory, or from
// the stream (one read per team at a time, which then serves the others from memory).
func (s *Server) replayEvents(ctx context.Context, h *hub, since, upto int64) ([]*origin.Event, error) {
	h.mu.Lock()
	evs, ok := h.recent.rangeOf(since, upto)
	h.mu.Unlock()
	if ok {
		s.metrics.replays.WithLabelValues("memory").Inc()
		return evs, nil
	}
	from := max(min(since, upto-prefill), 0)
	v, err, _ := s.fills.Do(h.team, func() (any, error) {
		f := &fetched{from: from, upto: upto}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err := s.cfg.Replay.Replay(fctx, h.team, from, upto, func(ev *origin.Event) error {
			f.evs = append(f.evs, ev)
			return nil
		})
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.recent.fill(f.evs, s.cfg.RecentEvents, s.cfg.RecentBytes)
		h.mu.Unlock()
		return f, nil
	})
	if err == nil {
		// The read covers this range when it started no later and reached as far (it read
		// from a flight that another resume of the team may have begun).
		if f := v.(*fetched); f.from <= since && upto <= f.upto && int64(len(f.evs)) == f.upto-f.from {
			s.metrics.replays.WithLabelValues("stream_shared").Inc()
			return append([]*origin.Event(nil), f.evs[since-f.from:upto-f.from]...), nil
		}
	}
	// Not covered by the shared read (another range, or it failed): this session's own.
	s.metrics.replays.WithLabelValues("stream").Inc()
	evs = nil
	err = s.cfg.Replay.Replay(ctx, h.team, since, upto, func(ev *origin.Event) error {
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}

// fetched is one stream read of a team's events with from < seq <= upto.
type fetched struct {
	from, upto int64
	evs        []*origin.Event
}
