package edge

import (
	"encoding/json"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/protocol"
)

// A session's writes (see session and writerPool). Frames queue in s.queue; a chain of turns
// writes them, begun by kick and ended when the queue is empty (writing). Each turn takes the
// whole queue and writes it in one vectored write:
//
//   - on a writer of the pool, without waiting for the client (writeTurn): what the socket
//     does not take at once moves to a goroutine of the session's own (writeBlocked), which
//     waits up to WriteTimeout and then gives the session back to the pool;
//   - on the reader, for a reply with nothing queued ahead of it (reply), or on a goroutine of
//     its own when no pool runs (writeTurns): waiting for the client.
//
// At most one turn of a session runs at a time: a turn begins only by clearing pending, which
// only the end of the previous one sets again.

// batches are the wire layouts of the turns that run off the pool (a pool writer keeps its own).
var batches = sync.Pool{New: func() any { return new(wireBatch) }}

// kick begins a chain of turns on the pool if there is work and none is under way. mu held.
func (s *session) kick() {
	if s.writing || !s.live || (len(s.queue) == 0 && s.closing == "") {
		return
	}
	s.writing, s.pending = true, true
	s.wg.Add(1)
	if s.turns != nil {
		*s.turns = append(*s.turns, s)
		return
	}
	s.srv.writers.schedule(s, false)
}

// hurry makes the pending turn urgent (a reply waits in it). mu held.
func (s *session) hurry() {
	if s.pending && !s.urgent {
		s.urgent = true
		s.srv.writers.schedule(s, true)
	}
}

// goLive puts first (hello, replayed events) ahead of whatever fan-out queued meanwhile, and
// lets the writer run. first is bounded by MaxReplay, not QueueBytes: until it is written, its
// bytes are grace on top of the bound, so a long resume is not mistaken for a slow consumer.
func (s *session) goLive(first [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	frames := make([]outFrame, 0, len(first)+len(s.queue))
	for _, f := range first {
		n += len(f)
		frames = append(frames, outFrame{op: ws.OpText, p: f})
	}
	s.queue = append(frames, s.queue...)
	s.grace = n + s.queued // what waited for the hello is written first too
	s.queued += n
	s.progress = bucket.Now()
	s.live = true
	s.kick()
}

// spareFrames is the largest queue slice a session keeps for its next turn.
const spareFrames = 8

// turn is what one turn writes: frames taken from the queue (their payload bytes counted in
// queued), or the goodbye and close frames.
type turn struct {
	frames  []outFrame
	queued  int  // payload bytes of frames that count in s.queued
	goodbye bool // frames are the goodbye and the close frame
}

// begin takes the next turn's frames, or ends the chain (ok false) when there is nothing
// left to write. fromPool: a pool writer popped the session, and the turn may be a stale copy
// (pending already cleared by the other copy).
func (s *session) begin(fromPool bool) (t turn, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fromPool {
		if !s.pending {
			return turn{}, false // the other copy of this turn ran it
		}
		s.pending, s.urgent = false, false
	}
	if s.stopped.Load() { // ended: nothing will be read
		s.queue = nil
	}
	if len(s.queue) == 0 {
		reason := s.closing
		if reason == "" || reason == "closed" || s.stopped.Load() {
			s.endChainLocked()
			return turn{}, false
		}
		s.closing = "closed" // nothing more is sent after the goodbye
		b, _ := json.Marshal(protocol.Goodbye{Type: protocol.FrameGoodbye, Reason: reason, ReconnectAfterMS: s.reconnect})
		s.srv.metrics.goodbyes.WithLabelValues(reason).Inc()
		return turn{frames: []outFrame{{op: ws.OpText, p: b}, closeFrame(s.closeCode, reason)}, goodbye: true}, true
	}
	t.frames = s.queue
	s.queue, s.spare = s.spare[:0], nil // the last turn's slice, kept small (see wrote)
	for _, f := range t.frames {
		t.queued += len(f.p)
	}
	return t, true
}

// wrote accounts for the first n frames of t, written, and puts the rest back at the head of
// the queue. It reports whether the chain goes on (more to write); when not, the chain is over.
// pool: the chain's next turn goes to the pool (the caller schedules it), and is pending.
func (s *session) wrote(t turn, n int, pool bool) (more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := 0
	for _, f := range t.frames[:n] {
		done += len(f.p)
	}
	if t.goodbye {
		// The client answers the close frame with its own, and the reader ends the session; one
		// that does not is closed closeWait later.
		s.closer = time.AfterFunc(closeWait, s.stop)
	} else {
		s.queued = max(s.queued-done, 0)
		s.grace = max(s.grace-done, 0) // first is at the head of the queue: written first
		if rest := t.frames[n:]; len(rest) > 0 && !s.stopped.Load() {
			s.queue = append(rest, s.queue...)
		} else if cap(t.frames) <= spareFrames {
			// The turn's slice takes the next frames: an event to 10,000 sessions allocates no
			// queue per session. Only a small one is kept, or an idle session would hold a
			// burst's worth.
			clear(t.frames)
			s.spare = t.frames[:0]
		}
	}
	s.progress = bucket.Now()
	if s.outboundPaused && s.queued < s.srv.cfg.QueueBytes/4 {
		s.outboundPaused = false
		s.throttle.resume(pauseOutbound)
	}
	if !s.stopped.Load() && (len(s.queue) > 0 || (s.closing != "" && s.closing != "closed")) {
		s.pending = pool
		return true
	}
	s.endChainLocked()
	return false
}

// failed ends a chain whose write failed, and the session with it.
func (s *session) failed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.endWith(endWriteTimeout) // the client stopped reading
	} else {
		s.endWith(endWriteError) // the connection is gone
	}
	s.mu.Lock()
	s.queue = nil
	s.endChainLocked()
	s.mu.Unlock()
}

// endChainLocked ends the chain of turns under way. mu held.
func (s *session) endChainLocked() {
	s.writing = false
	if s.chainEnded != nil {
		close(s.chainEnded)
		s.chainEnded = nil
	}
	s.wg.Done()
}

// writeTurn is one turn on a pool writer, laid out in b: it writes what the socket takes now,
// and hands the rest to writeBlocked. It reports whether it wrote.
func (s *session) writeTurn(b *wireBatch) bool {
	t, ok := s.begin(true)
	if !ok {
		return false
	}
	n := b.fill(t.frames)
	done, err := s.conn.tryWrite(b)
	switch {
	case err != nil:
		s.failed(err)
	case !done:
		// The client's socket is full: wait for it off the pool. The rest of b is the turn's.
		rest := &wireBatch{iov: append([][]byte(nil), b.iov...), hdr: b.hdr}
		b.hdr = nil // the rest's headers point into it
		go s.writeBlocked(rest, t, n)
	case s.wrote(t, n, true):
		s.srv.writers.schedule(s, false)
	}
	return true
}

// writeBlocked writes the rest of a turn, waiting for the client up to WriteTimeout, and gives
// the session back to the pool.
func (s *session) writeBlocked(rest *wireBatch, t turn, n int) {
	if err := s.conn.writeBlocking(rest, time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
		s.failed(err)
		return
	}
	if s.wrote(t, n, true) {
		s.srv.writers.schedule(s, false)
	}
}

// writeTurns runs the pending turn and the chain after it on a goroutine of its own: the pool
// is not running.
func (s *session) writeTurns() {
	s.mu.Lock()
	mine := s.pending
	s.pending, s.urgent = false, false
	s.mu.Unlock()
	if mine {
		s.writeChain()
	}
}

// writeChain runs a chain of turns on the calling goroutine, each waiting for the client: a
// reply's (reply), or writeTurns'. The chain was begun (writing set, wg added) and has no turn
// pending: no pool writer begins one of its turns meanwhile.
func (s *session) writeChain() {
	b := batches.Get().(*wireBatch)
	defer batches.Put(b)
	for {
		t, ok := s.begin(false)
		if !ok {
			return
		}
		n := b.fill(t.frames)
		if err := s.conn.writeBlocking(b, time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
			s.failed(err)
			return
		}
		if !s.wrote(t, n, false) {
			return
		}
	}
}
