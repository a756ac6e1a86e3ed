package edge

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/protocol"
)

// session is one WebSocket connection: its identity (from the token only), its outbound
// queue, the request it is answering.
//
// Goroutines: the session's reader owns it. Server.startSession starts it and returns (the
// HTTP handler's goroutine is gone once the hello is queued); the reader runs readLoop and
// then Server.endSession, the one place a session ends. A request runs on the reader, so a
// connection's requests are answered one at a time, in order (dispatch). Frames are written
// in turns (writeTurn) that the node's writer pool takes (writers.go): a session with nothing
// queued has no writer at all. A reply with nothing queued ahead of it is written by the
// request's goroutine itself (reply). wg counts the chains of turns under way (writing) and
// the requests; endSession waits for them.
//
// Why the session ended is recorded once, in ended, by whatever decided it first (endWith,
// beginClose), and counted by endSession (end.go).
type session struct {
	srv  *Server
	id   string
	team *cache.Team
	hub  *hub
	user string
	conn *wsConn
	ctx  context.Context // cancelled when the session ends
	stop func()          // cancels ctx, sets stopped and wakes the reader; idempotent
	// stopped is ctx's end, read by the writers without the context's lock.
	stopped atomic.Bool
	wg      sync.WaitGroup

	ended atomic.Uint32 // the endReason, set once (endWith, beginClose)
	// visitor: a proxy of another region routed the session here (visitors.go). Set before
	// the reader starts.
	visitor bool

	// mu guards the fields below. Lock order of the fan-out: hub.mu → session.mu →
	// throttle.mu, and session.mu → writerPool.mu. The fan-out queues frames here under its
	// hub's mu (hub.fanout → sendEvent); sendLocked and the writer pause and resume the
	// throttle under mu, and kick schedules turns under it. No session code takes a hub's mu
	// while holding mu, the pool calls nothing of a session under its own mu, and the
	// throttle calls nothing back under its own mu but metrics. A team's cache.Store lock is
	// a leaf below all of them (read under hub.mu by the fan-out's scope and annotations).
	mu        sync.Mutex
	queue     []outFrame
	spare     []outFrame  // an empty slice for the next queue (see wrote)
	turns     *[]*session // set by the fan-out while it queues: kick adds to it (see sendEvent)
	queued    int         // payload bytes in queue and in the write under way
	progress  int64       // bucket clock: when the writer last finished a write, or the queue last filled from empty
	grace     int         // bytes of hello and replay not yet written: they do not count against QueueBytes
	live      bool        // hello is queued; the writer may run
	writing   bool        // a chain of turns is under way: queued in the pool, writing, or waiting for the client
	pending   bool        // a turn is queued in the pool and has not begun (an urgent copy may be queued too)
	urgent    bool        // an urgent copy of the pending turn is queued
	closing   string      // goodbye reason once the server decided to close, "" before; "closed" once it is sent
	closeCode ws.StatusCode
	reconnect int64       // goodbye's reconnect_after_ms
	closer    *time.Timer // closes the connection closeWait after the close frame was sent
	expiry    *time.Timer // says goodbye token_expired when the token expires; set before the reader starts
	// chainEnded, when set, is closed when the chain of turns under way ends (sayClose waits
	// for its close frame to be written).
	chainEnded chan struct{}

	outboundPaused bool // the throttle holds pauseOutbound

	seen     *jitRecord    // objects recently sent to the client (see jit.go); made on first use
	requests bucket.Bucket // the client's request quota
	throttle throttle      // whether the reader reads (see throttle.go)
}

// send queues a frame. It never blocks: a session that cannot keep up (see sendLocked) is
// marked a slow consumer and closed, and send reports false.
func (s *session) send(frame []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(frame)
}

// sendEvent queues an event's frame for this session, with the annotations it needs. A turn
// of the writers it needs is added to turns, for the fan-out to hand over with others.
func (s *session) sendEvent(a *annotator, turns *[]*session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing != "" {
		return false
	}
	s.turns = turns
	defer func() { s.turns = nil }()
	return s.sendLocked(a.frameFor(s))
}

// sendLocked queues a frame unless the session is a slow consumer. A queue over QueueBytes alone
// does not make one: a client that reads as fast as it can still falls behind for a moment when
// a burst of events arrives, or when its writer waits for a CPU on a busy machine, and cutting
// it off would only make it reconnect and resume the same events. A session is a slow consumer
// when its queue is over QueueBytes and its writer has finished no frame for StallTimeout (the
// client is not reading), or when the queue passes the hard cap of 4 × QueueBytes whatever the
// progress (the client reads, but slower than its events come: memory stays bounded).
func (s *session) sendLocked(frame []byte) bool {
	return s.queueLocked(outFrame{op: ws.OpText, p: frame})
}

// queueLocked queues f, by sendLocked's rule. mu held.
func (s *session) queueLocked(f outFrame) bool {
	frame := f.p
	if s.closing != "" {
		return false
	}
	soft, hard := s.srv.cfg.QueueBytes+s.grace, 4*s.srv.cfg.QueueBytes+s.grace
	if !s.live {
		// Before its hello nothing can drain the queue: the events of a long resume's replay
		// time wait here. They get room of their own (bounded, so a replay that never ends
		// still ends as a slow consumer) and become grace at goLive.
		soft = hard
	}
	if n := s.queued + len(frame); n > soft {
		stalled := s.live && time.Duration(bucket.Now()-s.progress) > s.srv.cfg.StallTimeout
		if stalled || n > hard {
			s.srv.metrics.slowConsumers.Inc()
			s.beginClose(endSlowConsumer, s.srv.jitter(s.srv.cfg.HeartbeatInterval/10))
			if stalled {
				// The writer is stuck in a write the client does not read (or could not run
				// for StallTimeout): a goodbye would wait behind that write until WriteTimeout.
				// End the session now; its owner closes the connection, which frees the writer.
				s.stop()
			} else {
				// The writer may be mid-write to a client that has just stopped reading: the
				// goodbye gets StallTimeout, not WriteTimeout, before the session is ended. The
				// timer holds the session no longer than that; stop is idempotent.
				time.AfterFunc(s.srv.cfg.StallTimeout, s.stop)
			}
			return false
		}
	}
	if s.queued == 0 {
		s.progress = bucket.Now() // the writer's wait starts now, not at its last frame
	}
	s.queue = append(s.queue, f)
	s.queued += len(frame)
	if !s.outboundPaused && s.queued > s.srv.cfg.QueueBytes/2 {
		s.outboundPaused = true
		s.throttle.pause(pauseOutbound, time.Time{})
	}
	s.kick()
	return true
}

// goodbye asks the session to close for why, one of the ends with a goodbye (goodbyeOf); the
// writer sends the goodbye frame.
func (s *session) goodbye(why endReason, reconnectAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing == "" {
		s.beginClose(why, reconnectAfter)
	}
}

// beginClose records why the session closes and makes sure a writer will act on it. mu held.
func (s *session) beginClose(why endReason, reconnectAfter time.Duration) {
	reason, code, _ := goodbyeOf(why)
	s.closing, s.closeCode, s.reconnect = reason, code, reconnectAfter.Milliseconds()
	s.ended.CompareAndSwap(uint32(endUnknown), uint32(why)) // the decision is the end, not the close that follows
	if why == endSlowConsumer {
		s.queue, s.queued, s.grace = nil, 0, 0 // it cannot keep up: what is queued will not be read in time
	}
	s.live = true // a session closing during setup still says goodbye
	s.kick()
}

// seal marks the session over before its owner waits for wg: no frame is queued and no writer
// started after it, so a goodbye from Shutdown or a reload racing the end of the connection
// cannot Add to wg while the owner Waits.
func (s *session) seal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing == "" {
		s.closing = "closed"
	}
}

// readLoop reads client frames until the connection ends, and returns the read error that
// ended it (nil when the session was told goodbye policy). Bad frames get their error reply and
// a strike; a client that keeps striking is told goodbye policy.
func (s *session) readLoop() error {
	cfg := &s.srv.cfg
	strikes := 0
	buf := new(bytes.Buffer)
	// One timer per session, reset per frame, ends a connection silent for IdleTimeout: cheaper
	// than a context with a deadline per read, which an idle connection would hold (~1 KB).
	idle := time.AfterFunc(cfg.IdleTimeout, func() { s.endWith(endIdle) })
	defer idle.Stop()
	for {
		// Every reason to stop reading (quota, a backed-up outbound queue) is the throttle's.
		if err := s.throttle.wait(s.ctx); err != nil {
			return err
		}
		m, err := s.conn.readMessage(buf, cfg.MaxFrameBytes, 16*cfg.MaxFrameBytes)
		if err != nil {
			switch {
			case errors.Is(err, errClientClosed):
				s.sayClose(ws.StatusNormalClosure, "")
			case errors.Is(err, errMessageLimit):
				s.sayClose(ws.StatusMessageTooBig, "message too big")
			case errors.Is(err, errProtocol):
				s.sayClose(ws.StatusProtocolError, "protocol error")
			}
			if s.ctx.Err() != nil && !errors.Is(err, errClientClosed) {
				return s.ctx.Err() // the session was ended (stop woke the read)
			}
			return err
		}
		if m.op == ws.OpPing {
			// Answered, but not a heartbeat (docs/protocol.md section 3): the idle timer runs on.
			s.mu.Lock()
			s.queueLocked(outFrame{op: ws.OpPong, p: m.payload})
			s.mu.Unlock()
			continue
		}
		idle.Reset(cfg.IdleTimeout)
		switch {
		case s.policyClosing():
			// Told goodbye policy: nothing more is answered; the reader waits for the client's
			// close frame (or the close timer).
		case m.over:
			s.reject(nil, errorf(protocol.CodeTooLarge, "frame over %d bytes", cfg.MaxFrameBytes))
			strikes++
		case m.op != ws.OpText:
			s.reject(nil, errorf(protocol.CodeInvalidRequest, "binary frames are not part of weft.v1"))
			strikes++
		case s.dispatch(m.payload):
			strikes = max(strikes-1, 0)
		default:
			strikes++
		}
		if strikes >= cfg.PolicyStrikes {
			strikes = 0
			s.srv.metrics.policyCloses.Inc()
			s.goodbye(endPolicy, 0)
		}
	}
}

// policyClosing reports whether the session was told goodbye policy.
func (s *session) policyClosing() bool { return s.endReason() == endPolicy }

// sayClose ends the connection from the reader with a close frame (RFC 6455: the answer to
// the client's, or why the server closes), when nothing else is being written; then it lets
// the client see it before the socket closes: it shuts the sending side and reads what the
// client still sends (a huge frame's rest), bounded, so that the close does not turn into a
// reset that could destroy the frame on its way. Best effort and short: the session is ending.
func (s *session) sayClose(code ws.StatusCode, reason string) {
	s.mu.Lock()
	if s.closing != "" || s.stopped.Load() {
		s.mu.Unlock()
		return // a goodbye and its close frame are on their way or sent, or the session is over
	}
	s.closing = "closed"
	s.queue = nil // nothing more is read: what is queued would not be either
	if s.writing {
		// A turn is under way: the close frame goes after it, and the reader waits for the
		// chain to end (bounded: the client may not be reading).
		s.queue = []outFrame{closeFrame(code, reason)}
		ended := make(chan struct{})
		s.chainEnded = ended
		s.mu.Unlock()
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-ended:
			s.conn.linger(time.Second, 4<<20)
		case <-t.C:
		}
		return
	}
	s.mu.Unlock()
	b := wireBatch{}
	b.fill([]outFrame{closeFrame(code, reason)})
	if s.conn.writeBlocking(&b, time.Now().Add(time.Second)) != nil {
		return
	}
	s.conn.linger(time.Second, 4<<20)
}

// reject replies to a frame that broke the protocol; the caller counts the strike.
func (s *session) reject(id *int64, e *protocol.Error) {
	s.srv.metrics.requests.WithLabelValues("invalid", e.Code).Inc()
	s.send(protocol.AppendReply(nil, id, nil, e))
}

// dispatch handles one text frame; false when it was a protocol error.
func (s *session) dispatch(frame []byte) bool {
	req, e := protocol.DecodeRequest(frame)
	if e != nil {
		s.reject(req.ID, e)
		return false
	}
	if _, known := methods[req.Method]; !known {
		s.reject(req.ID, errorf(protocol.CodeUnknownMethod, "unknown method %q", truncate(req.Method)))
		return false
	}
	if ok, wait := s.requests.Take(bucket.Now()); !ok {
		// Over quota: told so, and not read from again until the bucket has a token. A
		// client that honours retry_after_ms never notices the pause.
		wait = max(wait, time.Millisecond)
		s.srv.metrics.requests.WithLabelValues(req.Method, protocol.CodeRateLimited).Inc()
		s.send(protocol.AppendReply(nil, req.ID, nil, &protocol.Error{Code: protocol.CodeRateLimited,
			Message: "request rate over quota", RetryAfterMS: (wait + time.Millisecond - 1).Milliseconds()}))
		s.throttle.pause(pauseRequests, time.Now().Add(wait))
		return true // over quota is not a protocol error
	}
	// Requests on one connection run one at a time, in order, here on the reader
	// (docs/protocol.md section 3): a client may pipeline, and its replies come in request
	// order. A cached answer takes microseconds, less than handing it to another goroutine, and
	// while a request runs nothing more is read, so a client that sends faster than it is
	// answered is held back by TCP rather than by a limit of ours.
	begin := time.Now()
	result, value, e := invokeValue(req.Method, &call{ctx: s.ctx, team: s.team.ID(), user: s.user, store: s.team.Store(), cursors: s.srv.cursors, params: req.Params})
	s.srv.metrics.observe(req.Method, e, time.Since(begin))
	s.reply(protocol.AppendReply(nil, req.ID, result, e), value)
	return true
}

// reply queues a reply like send, but when no writer runs and nothing is queued, the calling
// goroutine (the reader, never the fan-out's) writes it itself and then acts as the writer
// until the queue is empty: the common request round trip costs no goroutine hand-off.
//
// sent is the reply's value: the objects it carries are recorded as sent (jit.go) under the
// same lock that queues it, so that an event queued after the reply skips them and none can be
// queued between (recorded after, an event the client caused once it had the reply could
// attach them again; recorded before, an event could skip them ahead of the reply).
func (s *session) reply(frame []byte, sent any) {
	s.mu.Lock()
	if sent != nil {
		s.rememberLocked(sent)
	}
	if s.closing != "" || s.writing || !s.live || len(s.queue) > 0 ||
		s.queued+len(frame) > s.srv.cfg.QueueBytes+s.grace {
		if s.sendLocked(frame) { // the ordinary path decides (queue, or slow consumer)
			s.hurry() // a reply goes ahead of other sessions' fan-out
		}
		s.mu.Unlock()
		return
	}
	s.writing = true
	s.queue = append(s.queue, outFrame{op: ws.OpText, p: frame})
	s.queued += len(frame)
	s.progress = bucket.Now()
	s.wg.Add(1)
	s.mu.Unlock()
	s.writeChain()
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
