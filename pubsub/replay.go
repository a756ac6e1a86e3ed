package pubsub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weft-edge/weft/internal/sleep"
	"github.com/weft-edge/weft/origin"
)

// walk calls fn, in seq order and once each, with team's events from seq from up to seq upto
// (upto <= 0: up to the last one the stream held when walk began). It is the one reader of
// ranges: Replay and gap filling both use it. It finds from with seek, then reads forward in
// batches, skipping messages that do not decode (counted) and duplicates.
//
// It returns the seq after the last event fn took, and
//   - nil when it reached upto (with upto <= 0: the end, including when nothing is stored),
//   - errNotStored when upto > 0 and the stream ends before upto,
//   - a *missingError when the stream lacks a seq of the range,
//   - fn's error, or a JetStream error.
func (b *Bus) walk(ctx context.Context, src *source, team string, from, upto int64, ts *teamState, fn func(*origin.Event) error) (int64, error) {
	next := from
	if upto > 0 && next > upto {
		return next, nil
	}
	pos, first, end, err := b.seek(ctx, src, team, next, ts, upto <= 0)
	if errors.Is(err, errNotStored) && upto <= 0 {
		return next, nil
	}
	if err != nil {
		return next, err
	}
	if first.Seq > next {
		return next, &missingError{Team: team, Seq: next, Found: first.Seq}
	}
	subj := origin.Subject(team)
	for {
		n := maxBatch
		if upto > 0 {
			n = int(min(upto-next+1, maxBatch))
		}
		msgs, pending, err := b.directBatch(ctx, src, directRequest{Seq: pos, NextFor: subj, Batch: n, MaxBytes: maxBatchBytes})
		if err != nil {
			return next, err
		}
		for _, m := range msgs {
			pos = m.seq + 1
			ev, err := origin.DecodeEvent(team, m.data)
			switch {
			case err != nil:
				b.stats.bad.Add(1)
				b.log.Debug("pubsub: skipping bad stored message", "team", team, "stream_seq", m.seq, "err", err)
			case ev.Seq < next:
				b.stats.duplicates.Add(1)
			case ev.Seq > next:
				return next, &missingError{Team: team, Seq: next, Found: ev.Seq}
			default:
				ts.putHint(ev.Seq, m.seq)
				if err := fn(ev); err != nil {
					return next, err
				}
				next++
				if upto > 0 && next > upto {
					return next, nil
				}
			}
			if upto <= 0 && m.seq >= end {
				return next, nil
			}
		}
		if len(msgs) == 0 || pending == 0 {
			if upto > 0 {
				return next, errNotStored
			}
			return next, nil
		}
	}
}

// notStoredPatience is how long Replay waits for events up to uptoSeq that the stream does not
// hold yet (a replica behind its leader) before it reports them as not held.
const notStoredPatience = time.Second

// Replay calls fn in order for each of team's events with afterSeq < seq <= uptoSeq
// (uptoSeq <= 0: up to the last one stored). It stops at fn's first error and returns it.
// When the stream no longer holds a seq of the range, Replay returns an error wrapping
// ErrTooOld (after the events before it were given to fn): the caller reloads instead.
//
// Replay retries JetStream errors until ctx ends; it waits up to a second for events up to
// uptoSeq that the stream has not stored yet.
func (b *Bus) Replay(ctx context.Context, team string, afterSeq, uptoSeq int64, fn func(*origin.Event) error) error {
	if err := validTeam(team); err != nil {
		return err
	}
	afterSeq = max(afterSeq, 0)
	if uptoSeq > 0 && uptoSeq <= afterSeq {
		return nil
	}
	var fnErr error
	call := func(ev *origin.Event) error {
		fnErr = fn(ev)
		return fnErr
	}
	ts := b.teamState(team) // shares the subscription's hint, when the team has one
	src := b.src
	next := afterSeq + 1
	var notStoredSince time.Time
	waiting := 0
	for attempt := 0; ; {
		var err error
		next, err = b.walk(ctx, src, team, next, uptoSeq, ts, call)
		var missing *missingError
		switch {
		case err == nil:
			return nil
		case fnErr != nil:
			return fnErr
		case errors.As(err, &missing):
			if src == b.src {
				if fb := b.fallbackFor(ctx, "lacks"); fb != nil {
					src = fb
					continue
				}
			}
			return fmt.Errorf("pubsub: replay: %w: %v", ErrTooOld, err)
		case ctx.Err() != nil:
			return fmt.Errorf("pubsub: replay team %s at seq %d: %w (%v)", team, next, ctx.Err(), err)
		case errors.Is(err, errNotStored):
			if notStoredSince.IsZero() {
				notStoredSince = time.Now()
			} else if time.Since(notStoredSince) > notStoredPatience {
				if src == b.src {
					if fb := b.fallbackFor(ctx, "lags behind"); fb != nil {
						src, notStoredSince, waiting = fb, time.Time{}, 0
						continue
					}
				}
				return fmt.Errorf("pubsub: replay: %w: team %s seq %d is not in the stream", ErrTooOld, team, next)
			}
			if werr := sleep.For(ctx, notStoredWait(waiting)); werr != nil {
				return fmt.Errorf("pubsub: replay team %s at seq %d: %w (%v)", team, next, werr, err)
			}
			waiting++
			continue
		}
		b.log.Debug("pubsub: replay, will retry", "team", team, "next", next, "attempt", attempt+1, "err", err)
		waiting, notStoredSince = 0, time.Time{}
		if werr := sleep.For(ctx, backoff(attempt)); werr != nil {
			return fmt.Errorf("pubsub: replay team %s at seq %d: %w (%v)", team, next, werr, err)
		}
		attempt++
	}
}

// LastSeq returns the team seq of the last event the stream holds for team (0 when none).
func (b *Bus) LastSeq(ctx context.Context, team string) (int64, error) {
	if err := validTeam(team); err != nil {
		return 0, err
	}
	ev, _, _, err := b.lastEvent(ctx, b.src, team)
	if errors.Is(err, errNotStored) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pubsub: last seq of team %s: %w", team, err)
	}
	return ev.Seq, nil
}
