package pubsub

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/weft-edge/weft/origin"
)

// Finding team seq N in the stream. The stream's sequence is global, one per message of every
// team, so team seq N is at some stream seq S that must be searched for. Within one team's
// subject team seqs increase in stream order (the origin publishes them in order and waits for
// each ack), so a binary search over stream seqs works: GetMsg(seq, next by subject) returns
// the team's first message at or after any stream seq, a probe of one round trip.
//
// A hint per subscribed team (the highest team seq seen, with its stream seq) bounds the search
// from below: everything before the hint has a smaller team seq. Gap filling asks for the seq
// right after the last one it delivered, so the first probe after the hint usually answers.

// hint says that team seq team sits at stream seq stream; the zero hint knows nothing.
type hint struct {
	team   int64
	stream uint64
}

func (ts *teamState) getHint() hint {
	if ts == nil {
		return hint{}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.hint
}

// putHint records a position if it is beyond the one known.
func (ts *teamState) putHint(team int64, stream uint64) {
	if ts == nil {
		return
	}
	ts.mu.Lock()
	if team > ts.hint.team {
		ts.hint = hint{team: team, stream: stream}
	}
	ts.mu.Unlock()
}

// clearHint forgets a hint that does not match the stream any more (it was re-created).
func (ts *teamState) clearHint() {
	if ts == nil {
		return
	}
	ts.mu.Lock()
	ts.hint = hint{}
	ts.mu.Unlock()
}

// maxBadTail bounds how many undecodable messages lastEvent steps back over.
const maxBadTail = 1000

// lastEvent returns the team's last decodable event in the stream, its stream seq, and the
// stream seq of the subject's last message (the same unless the last ones do not decode).
// errNotStored when the stream holds no event of the team.
func (b *Bus) lastEvent(ctx context.Context, src *source, team string) (ev *origin.Event, at, last uint64, err error) {
	subj := origin.Subject(team)
	cctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	m, err := src.stream.GetLastMsgForSubject(cctx, subj)
	cancel()
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, 0, errNotStored
	}
	if err != nil {
		return nil, 0, 0, err
	}
	last = m.Sequence
	at, data := m.Sequence, m.Data
	for range maxBadTail {
		if ev, err := origin.DecodeEvent(team, data); err == nil {
			return ev, at, last, nil
		}
		if at <= 1 {
			return nil, 0, last, errNotStored
		}
		// The last message of the subject before the bad one.
		msgs, _, err := b.directBatch(ctx, src, directRequest{MultiLast: []string{subj}, UpToSeq: at - 1, Batch: 1})
		if err != nil {
			return nil, 0, last, err
		}
		if len(msgs) == 0 {
			return nil, 0, last, errNotStored
		}
		at, data = msgs[0].seq, msgs[0].data
	}
	return nil, 0, last, fmt.Errorf("pubsub: team %s: more than %d undecodable messages at the end of the stream", team, maxBadTail)
}

// seek finds where team's events at or after team seq want begin: the stream seq at of the
// first decodable event with seq >= want (one with seq == want when the stream holds it), that
// event, and the stream seq of the subject's last message when seek looked. errNotStored when
// the stream holds no event of the team with seq >= want.
//
// Without needLast, a hint right before want answers with one probe and last is 0.
func (b *Bus) seek(ctx context.Context, src *source, team string, want int64, ts *teamState, needLast bool) (at uint64, ev *origin.Event, last uint64, err error) {
	subj := origin.Subject(team)
	h := ts.getHint()
	if !needLast && h.stream != 0 && h.team < want {
		// The usual gap fill: the next event after the hint is the one wanted. Anything else
		// (nothing there, an older event, a hint the stream does not match) takes the long way.
		e, eAt, err := b.probe(ctx, src, team, subj, h.stream+1, math.MaxUint64)
		if err != nil {
			return 0, nil, 0, err
		}
		if e != nil && e.Seq == want {
			return eAt, e, 0, nil
		}
	}

	lastEv, lastAt, last, err := b.lastEvent(ctx, src, team)
	if err != nil {
		return 0, nil, last, err
	}
	if lastEv.Seq < want {
		return 0, nil, last, errNotStored
	}
	if h.stream > lastAt || h.team > lastEv.Seq {
		ts.clearHint() // the stream was re-created under us
		h = hint{}
	}
	ts.putHint(lastEv.Seq, lastAt)
	if lastEv.Seq == want {
		return lastAt, lastEv, last, nil
	}

	// Search between below and end for the first event with seq >= want. Every event at or
	// before below has a seq < want; found (at foundAt) is the earliest event known with a seq
	// > want, and nothing decodable lies in [end, foundAt). An event with seq == want ends the
	// search early: any copy of it is a good place to start reading.
	type anchor struct {
		at  uint64
		seq int64
	}
	found, foundAt := lastEv, lastAt
	below, above, end := anchor{0, 0}, anchor{lastAt, lastEv.Seq}, lastAt
	if h.stream != 0 && h.team < want {
		below = anchor{h.stream, h.team}
	} else {
		// The team's first event: an anchor for interpolation, and the answer itself when want
		// is older than anything the stream holds (a replay from too far back).
		e, eAt, err := b.probe(ctx, src, team, subj, 1, lastAt-1)
		switch {
		case err != nil:
			return 0, nil, last, err
		case e == nil:
			return foundAt, found, last, nil
		case e.Seq >= want:
			return eAt, e, last, nil
		}
		below = anchor{eAt, e.Seq}
	}
	// Alternate interpolation (team seqs grow about linearly with stream seqs, so it lands
	// close) with bisection (which bounds the worst case at twice a binary search).
	for step := 0; below.at+1 < end; step++ {
		lo, hi := below.at+1, end-1
		mid := lo + (hi-lo)/2
		if step%2 == 0 && above.seq > below.seq {
			// Aim between the estimated positions of want-1 and want.
			frac := (float64(want-below.seq) - 0.5) / float64(above.seq-below.seq)
			mid = below.at + uint64(frac*float64(above.at-below.at))
			mid = min(max(mid, lo), hi)
		}
		e, eAt, err := b.probe(ctx, src, team, subj, mid, hi)
		switch {
		case err != nil:
			return 0, nil, last, err
		case e == nil: // nothing decodable in [mid, hi]
			end = mid
		case e.Seq == want:
			return eAt, e, last, nil
		case e.Seq > want:
			found, foundAt = e, eAt
			above, end = anchor{eAt, e.Seq}, eAt
		default:
			below = anchor{eAt, e.Seq}
		}
	}
	return foundAt, found, last, nil
}

// probe returns the first decodable event on the team's subject at a stream seq in [from, hi],
// nil when there is none.
func (b *Bus) probe(ctx context.Context, src *source, team, subj string, from, hi uint64) (*origin.Event, uint64, error) {
	for from <= hi {
		cctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
		m, err := src.stream.GetMsg(cctx, from, jetstream.WithGetMsgSubject(subj))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if m.Sequence > hi {
			return nil, 0, nil
		}
		if ev, err := origin.DecodeEvent(team, m.Data); err == nil {
			return ev, m.Sequence, nil
		}
		from = m.Sequence + 1
	}
	return nil, 0, nil
}
