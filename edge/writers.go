package edge

import (
	"runtime"
	"sync"
	"time"
)

// writerPool is the node's writers: a few goroutines (GOMAXPROCS by default) that take turns
// at the sessions with frames queued, each turn writing everything a session has queued in
// one vectored write that never waits for the client (session.writeTurn). An event to 10,000
// sessions then wakes no goroutine per session: the fan-out queues 10,000 turns, and the
// writers work through them at the speed of the machine, while a session's reader, woken by
// a request, finds a CPU at once instead of queueing behind 10,000 runnable writers.
//
// Two queues: urgent (a session with a reply to write) is served before ready (fan-out), so
// that a request's answer does not wait behind a team-wide event's 10,000 writes.
//
// A turn whose write would block (the client's socket buffer is full) moves to a goroutine of
// its session's own, which waits for the client up to WriteTimeout (writeBlocked) and then
// hands the session back: a slow client never holds a writer.
//
// Goroutines: the server starts the writers (Start) and stops them (Shutdown) once its
// sessions are gone. A turn scheduled while no writer runs (before Start, after Shutdown, or
// with Writers < 0) runs on a goroutine of its own, as every write did before the pool.
type writerPool struct {
	mu     sync.Mutex
	cond   sync.Cond
	urgent fifo
	ready  fifo
	idle   int  // writers waiting on cond
	run    bool // writers are running
	wg     sync.WaitGroup
}

// fifo is a queue of sessions.
type fifo struct {
	items []*session
	head  int
}

func (q *fifo) push(s *session) { q.items = append(q.items, s) }

func (q *fifo) pop() *session {
	if q.head == len(q.items) {
		return nil
	}
	s := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head > len(q.items)/2 { // compact: the backing array is reused
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return s
}

// start runs n writers (0: GOMAXPROCS; negative: none, every turn on a goroutine of its own).
func (p *writerPool) start(n int) {
	if n < 0 {
		return
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run {
		return
	}
	p.cond.L = &p.mu
	p.run = true
	for range n {
		p.wg.Go(p.writer)
	}
}

// stop ends the writers once the queues are empty, and waits for them.
func (p *writerPool) stop() {
	p.mu.Lock()
	p.run = false
	if p.cond.L != nil {
		p.cond.Broadcast()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// schedule gives s a turn; urgent turns go first. The caller has set s.pending (under s.mu),
// and the chain it belongs to holds s.wg: the turn's begin clears the one, the chain's end
// releases the other.
func (p *writerPool) schedule(s *session, urgent bool) {
	p.mu.Lock()
	if !p.run {
		p.mu.Unlock()
		if !urgent { // an urgent copy's turn is the chain's goroutine's already
			go s.writeTurns()
		}
		return
	}
	if urgent {
		p.urgent.push(s)
	} else {
		p.ready.push(s)
	}
	if p.idle > 0 {
		p.cond.Signal()
	}
	p.mu.Unlock()
}

// scheduleMany is schedule for many sessions at once (the fan-out's), none urgent.
func (p *writerPool) scheduleMany(ss []*session) {
	p.mu.Lock()
	if !p.run {
		p.mu.Unlock()
		for _, s := range ss {
			go s.writeTurns()
		}
		return
	}
	for _, s := range ss {
		p.ready.push(s)
	}
	switch {
	case p.idle > 1 && len(ss) > 1:
		p.cond.Broadcast()
	case p.idle > 0:
		p.cond.Signal()
	}
	p.mu.Unlock()
}

// yieldAfter is how long a writer takes turns between pauses (see writer): a request waits
// about that long for its reader to run while the writers are busy.
const yieldAfter = 200 * time.Microsecond

// writer takes turns until the pool stops and nothing is left.
func (p *writerPool) writer() {
	var b wireBatch
	yielded := time.Now()
	for {
		p.mu.Lock()
		var s *session
		for {
			if s = p.urgent.pop(); s == nil {
				s = p.ready.pop()
			}
			if s != nil || !p.run {
				break
			}
			p.idle++
			p.cond.Wait()
			p.idle--
		}
		p.mu.Unlock()
		if s == nil {
			return
		}
		if !s.writeTurn(&b) {
			continue
		}
		// Now and then during a long run of turns, let the goroutines whose sockets became
		// ready meanwhile (a reader with a request) run. Go's scheduler looks at the network
		// only when it has nothing else to run: writers that merely yielded (Gosched) would
		// be picked again first, and a request would wait for the runtime's background poll,
		// up to 10 ms. A writer that sleeps leaves its CPU with nothing queued for a moment,
		// and the scheduler polls the network.
		if now := time.Now(); now.Sub(yielded) > yieldAfter {
			time.Sleep(time.Microsecond)
			yielded = now
		}
	}
}
