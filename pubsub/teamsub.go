package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/weft-edge/weft/internal/sleep"
	"github.com/weft-edge/weft/origin"
)

// TeamSub follows one team's events: live from a core NATS subscription on the team's
// subject, with gaps filled from the JetStream stream. See [Bus.SubscribeTeam].
//
// All of its work happens on one delivery goroutine (run): decoding, ordering, filling and the
// Handler calls. Filling a gap blocks only that goroutine; meanwhile the team's live messages
// wait in the subscription's channel, and what overflows it is dropped by NATS and filled later.
type TeamSub struct {
	b     *Bus
	team  string
	subj  string
	h     Handler
	state *teamState
	log   *slog.Logger

	sub    *nats.Subscription
	msgs   chan *nats.Msg // the live buffer; NATS drops beyond its capacity
	start  chan int64     // cap 1: Start's afterSeq
	check  chan struct{}  // cap 1: check the tail now (after a reconnect)
	done   chan struct{}  // closed by Close
	exited chan struct{}  // closed when run returns
	ctx    context.Context
	cancel context.CancelFunc // aborts JetStream calls in flight at Close

	closed    atomic.Bool
	feed      feedState
	startOnce sync.Once
	closeOnce sync.Once

	// Owned by run.
	next        int64 // the seq to deliver next
	active      bool  // a live message arrived since the last gap-check tick
	seenDropped int   // NATS's count of dropped messages at the last check
	lastBadLog  time.Time
}

// SubscribeTeam subscribes to team's events. Live messages are buffered from now on; nothing
// is delivered to h before Start. The subscription is registered with the server when
// SubscribeTeam returns (when connected), so an origin seq read afterwards is covered: pass it
// to Start once the snapshot is loaded.
func (b *Bus) SubscribeTeam(team string, h Handler) (*TeamSub, error) {
	if err := validTeam(team); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("pubsub: subscribe: nil handler")
	}
	if b.isClosed() {
		return nil, ErrClosed
	}
	s := &TeamSub{
		b:      b,
		team:   team,
		subj:   origin.Subject(team),
		h:      h,
		log:    b.log.With("team", team),
		msgs:   make(chan *nats.Msg, b.cfg.SubPendingMsgs),
		start:  make(chan int64, 1),
		check:  make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	s.feed.caughtUp.Store(-1) // following nothing until its first tail check
	s.ctx, s.cancel = context.WithCancel(b.ctx)
	sub, err := b.nc.ChanSubscribe(s.subj, s.msgs)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("pubsub: subscribe team %s: %w", team, err)
	}
	s.sub = sub
	s.state, err = b.addSub(s)
	if err != nil {
		_ = sub.Unsubscribe()
		s.cancel()
		return nil, err
	}
	go s.run()
	// A round trip makes sure the server has the interest before the caller reads the origin's
	// seq. While disconnected there is no point waiting: the tail check at Start covers what
	// the stream got meanwhile.
	if b.nc.IsConnected() {
		if err := b.nc.FlushTimeout(b.cfg.RequestTimeout); err != nil {
			s.log.Debug("pubsub: flush after subscribe", "err", err)
		}
	}
	return s, nil
}

// Start begins delivery of events with seq > afterSeq, in order: buffered events at or below
// afterSeq are dropped, the rest are delivered, and what the buffer misses is read from the
// stream. Only the first call counts.
func (s *TeamSub) Start(afterSeq int64) {
	s.startOnce.Do(func() { s.start <- max(afterSeq, 0) })
}

// Team is the subscribed team.
func (s *TeamSub) Team() string { return s.team }

// Close stops the subscription and waits for its delivery goroutine: after it returns, the
// Handler is never called again. It is idempotent. A Handler must not call Close (it would wait
// for itself); it calls Stop.
func (s *TeamSub) Close() {
	s.Stop()
	<-s.exited
}

// Stop stops the subscription without waiting. Called from inside the Handler, the call in
// progress is the last one.
func (s *TeamSub) Stop() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.cancel()
		s.unsubscribe()
		s.b.removeSub(s)
	})
}

func (s *TeamSub) unsubscribe() {
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrBadSubscription) &&
		!errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Debug("pubsub: unsubscribe", "err", err)
	}
}

// poke asks the subscription to check its tail against the stream (after a reconnect).
func (s *TeamSub) poke() {
	select {
	case s.check <- struct{}{}:
	default:
	}
}

// run is the delivery goroutine. Every exit path leaves the Handler uncalled from then on.
func (s *TeamSub) run() {
	defer s.b.wg.Done()
	defer close(s.exited)

	var after int64
	select {
	case <-s.done:
		return
	case after = <-s.start:
	}
	s.next = after + 1
	s.feed.applied.Store(after)
	s.feed.heard(after)

	tick := time.NewTicker(jittered(s.b.cfg.GapCheckInterval))
	defer tick.Stop()
	recheck := time.NewTimer(time.Hour)
	recheck.Stop()
	defer recheck.Stop()
	rechecks := 0
	// afterDrops checks the tail once NATS has dropped messages and the buffer is empty: the
	// dropped ones may have been the last for a while. The stream may store them a moment after
	// they were dropped, so a few checks follow at growing intervals.
	afterDrops := func() bool {
		if !s.droppedMore() {
			return true
		}
		rechecks = recheckCount
		recheck.Reset(recheckDelay)
		return s.fillTail()
	}

	// The buffer first (it drops what afterSeq covers), then whatever the stream holds beyond:
	// events stored before the interest reached every server, or dropped from a full buffer.
	if !s.catchUp() || !afterDrops() {
		return
	}
	for {
		select {
		case <-s.done:
			return
		case m := <-s.msgs:
			s.active = true
			if !s.handle(m) {
				return
			}
			if len(s.msgs) == 0 && !afterDrops() {
				return
			}
		case <-s.check:
			if !s.catchUp() {
				return
			}
		case <-recheck.C:
			if !s.drain() || !s.fillTail() {
				return
			}
			if rechecks--; rechecks > 0 {
				recheck.Reset(recheckDelay << (2 * (recheckCount - rechecks)))
			}
		case <-tick.C:
			if s.active {
				s.active = false
				continue
			}
			if !s.catchUp() {
				return
			}
		}
	}
}

// After NATS drops messages of a subscription, its tail is checked at once and then
// recheckCount times, after recheckDelay, 4×, 16× that.
const (
	recheckDelay = 10 * time.Millisecond
	recheckCount = 3
)

// droppedMore tells whether NATS dropped messages of the subscription since the last call.
func (s *TeamSub) droppedMore() bool {
	n, err := s.sub.Dropped()
	if err != nil || n <= s.seenDropped {
		return false
	}
	s.seenDropped = n
	return true
}

// drain handles what the live buffer holds now, so that a tail check never reads from the
// stream what is waiting in the buffer. It stops after twice the buffer's size: a buffer that
// never empties needs no tail check.
func (s *TeamSub) drain() bool {
	for range 2 * cap(s.msgs) {
		select {
		case m := <-s.msgs:
			if !s.handle(m) {
				return false
			}
		default:
			return true
		}
	}
	return true
}

// handle takes one live message. It returns false when the subscription must stop.
func (s *TeamSub) handle(m *nats.Msg) bool {
	st := &s.b.stats
	st.received.Add(1)
	ev, err := origin.DecodeEvent(s.team, m.Data)
	if err != nil {
		st.bad.Add(1)
		s.logBad("pubsub: skipping bad live message", err)
		return true
	}
	s.feed.heard(ev.Seq)
	switch {
	case ev.Seq < s.next:
		st.duplicates.Add(1)
		return true
	case ev.Seq > s.next:
		st.gaps.Add(1)
		s.log.Debug("pubsub: gap", "next", s.next, "got", ev.Seq)
		if !s.fill(ev.Seq - 1) {
			return false
		}
		st.gapsFilled.Add(1)
	}
	return s.deliver(ev, false)
}

// deliver hands ev (whose seq is s.next) to the Handler.
func (s *TeamSub) deliver(ev *origin.Event, filled bool) bool {
	if s.closed.Load() {
		return false
	}
	s.feed.heard(ev.Seq) // a tail read from the stream was not heard of before
	s.h.Event(ev)
	s.next = ev.Seq + 1
	s.feed.applied.Store(ev.Seq)
	s.b.stats.delivered.Add(1)
	if filled {
		s.b.stats.filled.Add(1)
	}
	return !s.closed.Load()
}

// fillTail delivers what the stream holds beyond s.next-1, up to its last event at the time of
// the check: the repair for events published while this subscriber was away.
func (s *TeamSub) fillTail() bool {
	before := s.next
	ok := s.fill(0)
	if s.next > before {
		s.b.stats.gaps.Add(1)
		if ok {
			s.b.stats.gapsFilled.Add(1)
		}
		s.log.Debug("pubsub: filled tail", "from", before, "to", s.next-1)
	}
	return ok
}

// fill delivers seqs s.next..upto from the stream (upto <= 0: up to its last event). On a
// JetStream error it retries with backoff until it succeeds or the subscription closes; when
// the stream no longer holds a seq it calls Lost. It returns false when the subscription must
// stop.
func (s *TeamSub) fill(upto int64) bool {
	s.feed.heard(upto)
	deliver := func(ev *origin.Event) error {
		if !s.deliver(ev, true) {
			return errSubClosed
		}
		return nil
	}
	src := s.b.src
	waiting := 0 // consecutive errNotStored
	var waitingSince time.Time
	for attempt := 0; ; {
		var err error
		s.next, err = s.b.walk(s.ctx, src, s.team, s.next, upto, s.state, deliver)
		var missing *missingError
		switch {
		case err == nil:
			return true
		case errors.As(err, &missing):
			if src == s.b.src {
				if fb := s.b.fallbackFor(s.ctx, "lacks"); fb != nil {
					src = fb
					continue
				}
			}
			s.lose(fmt.Errorf("%w: %v", ErrGapUnfillable, err))
			return false
		case errors.Is(err, errSubClosed) || s.closed.Load():
			return false
		case errors.Is(err, errNotStored):
			// A live message overtook the stream's copy of the ones before it: the stream
			// stores them a moment later. Not an error, but no reason to hammer it either.
			// A copy that lags for longer (a region's mirror resuming after a partition)
			// gives way to the fallback, when there is one.
			if waitingSince.IsZero() {
				waitingSince = time.Now()
			}
			if src == s.b.src && time.Since(waitingSince) >= fallbackAfter {
				waitingSince = time.Now() // a fallback that failed is tried again after as long
				if fb := s.b.fallbackFor(s.ctx, "lags behind"); fb != nil {
					src, waiting = fb, 0
					continue
				}
			}
			if sleep.For(s.ctx, notStoredWait(waiting)) != nil {
				return false
			}
			waiting++
			continue
		}
		waiting, waitingSince = 0, time.Time{}
		s.b.stats.fillRetries.Add(1)
		level := slog.LevelDebug
		if attempt == 2 || attempt%20 == 19 {
			level = slog.LevelWarn
		}
		s.log.Log(s.ctx, level, "pubsub: filling gap from the stream, will retry", "next", s.next, "upto", upto, "attempt", attempt+1, "err", err)
		if sleep.For(s.ctx, backoff(attempt)) != nil {
			return false
		}
		attempt++
	}
}

// lose ends the subscription with one call to Lost.
func (s *TeamSub) lose(err error) {
	s.b.stats.lost.Add(1)
	s.log.Warn("pubsub: team subscription lost, the team must reload", "err", err)
	s.unsubscribe()
	if !s.closed.Load() {
		s.h.Lost(err)
	}
}

func (s *TeamSub) logBad(msg string, err error) {
	level := slog.LevelDebug
	if now := time.Now(); now.Sub(s.lastBadLog) > 10*time.Second {
		level, s.lastBadLog = slog.LevelWarn, now
	}
	s.log.Log(s.ctx, level, msg, "err", err)
}

var errSubClosed = errors.New("pubsub: subscription closed")

// validTeam refuses team IDs that are not a single NATS subject token.
func validTeam(team string) error {
	if team == "" || strings.ContainsAny(team, ".*> \t\r\n") {
		return fmt.Errorf("pubsub: invalid team ID %q", team)
	}
	return nil
}

// jittered spreads periodic checks of many subscriptions: d ± 10%.
func jittered(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}
