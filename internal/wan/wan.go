// Package wan simulates a wide-area link between regions on one machine: a TCP proxy on a
// loopback address that delays every byte by a one-way latency in each direction, counts what
// it carries, and can be cut (a partition) and healed. weft's region tests put one between the
// home region's NATS hub and each edge region's leaf nodes (internal/regiontest); `weft dev
// --regions` can do the same.
//
// Latency is added without capping throughput: each chunk read is stamped with the time it
// is due (read time + RTT/2) and queued; the writer sends it once due, so chunks in flight
// overlap as packets on a long link do, and a stream of N chunks costs one delay, not N.
// Order is kept per connection and direction. The link has no bandwidth limit or loss: a WAN
// here is its latency and its outages.
//
// Shopify/toxiproxy/v2 resolves and was the first choice, but as a library it brings its HTTP
// API, logger and metrics stack (gorilla/mux, zerolog, an old prometheus client) for a proxy of
// a few hundred lines, and the counting per direction and the tap the tests need would be a
// custom toxic anyway.
package wan

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction is one way across a link.
type Direction int

const (
	// Up is from the side that dials the link to its upstream (an edge region's leaf node to
	// the hub).
	Up Direction = iota
	// Down is from the upstream back to the dialer (the hub's events to the region).
	Down
)

func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// Mode is how a cut link behaves.
type Mode int

const (
	// Drop resets every connection at once and refuses new ones until Heal: a link that is
	// down and says so (what a router does for an unreachable network).
	Drop Mode = iota
	// Hold carries nothing until Heal and then delivers what waited, in order: connections
	// stay open, bytes queue in the link (senders block once it is full) and new connections
	// wait for their upstream. A blackhole shorter than TCP's timeouts.
	Hold
)

// Config configures a Link.
type Config struct {
	// Listen is the loopback address to listen on. "" = 127.0.0.1:0 (a free port).
	Listen string
	// Upstreams are the loopback addresses the link carries connections to, tried in order for
	// each new connection: the first that answers carries it (a hub cluster's servers).
	Upstreams []string
	// RTT is the round trip the link adds: each direction delays by RTT/2.
	RTT time.Duration
	// Tap, when set, sees every chunk as it is delivered: in order per connection and
	// direction, from that direction's goroutine. b is valid during the call only.
	Tap func(conn uint64, dir Direction, b []byte)
	// DialTimeout bounds each dial of an upstream. 0 = 5s.
	DialTimeout time.Duration
}

// Traffic is what a link delivered one way.
type Traffic struct {
	Bytes  int64 // bytes delivered
	Chunks int64 // writes that delivered them (one per chunk read from the sender)
}

// Stats are a link's counters since it started.
type Stats struct {
	Up, Down Traffic
	Queued   int64 // bytes read and not delivered yet (in flight, or held by a cut)
	Accepted int64 // connections accepted
	Refused  int64 // of them, reset at once: the link was cut (Drop) or no upstream answered
	Open     int64 // connections carried now
}

// chunkSize is the most a read takes at once; queueChunks how many chunks wait per connection
// and direction before the reader stops reading (and TCP pushes back on the sender).
const (
	chunkSize   = 32 << 10
	queueChunks = 4096
)

// Link is a simulated WAN link: a listener whose connections are carried to an upstream with
// added latency. Its methods are safe for concurrent use.
type Link struct {
	cfg    Config
	ln     net.Listener
	oneWay atomic.Int64 // nanoseconds

	up, down         traffic
	queued           atomic.Int64
	accepted, refuse atomic.Int64
	open             atomic.Int64
	nextID           atomic.Uint64

	mu     sync.Mutex
	pipes  map[*pipe]struct{}
	cut    bool
	mode   Mode
	healed chan struct{} // closed while not held; a fresh one while cut with Hold
	closed bool
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
}

type traffic struct{ bytes, chunks atomic.Int64 }

// Listen starts a link on cfg.Listen. Close stops it.
func Listen(cfg Config) (*Link, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if err := loopback(cfg.Listen); err != nil {
		return nil, fmt.Errorf("wan: listen: %w", err)
	}
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("wan: no upstream to carry connections to")
	}
	for _, u := range cfg.Upstreams {
		if err := loopback(u); err != nil {
			return nil, fmt.Errorf("wan: upstream: %w", err)
		}
	}
	if cfg.RTT < 0 || cfg.DialTimeout < 0 {
		return nil, errors.New("wan: negative RTT or DialTimeout")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("wan: %w", err)
	}
	healed := make(chan struct{})
	close(healed)
	l := &Link{cfg: cfg, ln: ln, pipes: map[*pipe]struct{}{}, healed: healed, done: make(chan struct{})}
	l.SetRTT(cfg.RTT)
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// loopback refuses an address that is not on the loopback network: the simulation never
// carries traffic off this machine.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}

// Addr is the host:port the link listens on.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// SetRTT changes the round trip the link adds, for the chunks read from now on.
func (l *Link) SetRTT(rtt time.Duration) { l.oneWay.Store(int64(max(rtt, 0) / 2)) }

// RTT is the round trip the link adds.
func (l *Link) RTT() time.Duration { return 2 * time.Duration(l.oneWay.Load()) }

// Cut partitions the link until Heal (see Mode). Cutting a cut link changes its mode; a
// link cut with Hold and then with Drop drops what it held.
func (l *Link) Cut(m Mode) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if !l.cut {
		l.healed = make(chan struct{}) // carriers and new connections wait on it until Heal
	}
	l.cut, l.mode = true, m
	var drop []*pipe
	if m == Drop {
		for p := range l.pipes {
			drop = append(drop, p)
		}
	}
	l.mu.Unlock()
	for _, p := range drop {
		p.reset()
	}
}

// Heal ends a cut: held bytes and connections go through, new connections are carried.
func (l *Link) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		l.cut = false
		close(l.healed)
	}
}

// IsCut reports whether the link is cut.
func (l *Link) IsCut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

// Stats returns the link's counters.
func (l *Link) Stats() Stats {
	return Stats{
		Up:       Traffic{Bytes: l.up.bytes.Load(), Chunks: l.up.chunks.Load()},
		Down:     Traffic{Bytes: l.down.bytes.Load(), Chunks: l.down.chunks.Load()},
		Queued:   l.queued.Load(),
		Accepted: l.accepted.Load(),
		Refused:  l.refuse.Load(),
		Open:     l.open.Load(),
	}
}

// Close stops listening, resets every connection and waits for the link's goroutines.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	var all []*pipe
	for p := range l.pipes {
		all = append(all, p)
	}
	l.mu.Unlock()
	err := l.ln.Close()
	for _, p := range all {
		p.reset()
	}
	l.wg.Wait()
	return err
}

// state is the link's cut state: whether new connections are refused, and the channel that
// is closed while nothing is held.
func (l *Link) state() (refuse bool, healed chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut && l.mode == Drop, l.healed
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (out of file descriptors): try again shortly.
			select {
			case <-l.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		l.accepted.Add(1)
		l.wg.Add(1)
		go l.serve(c)
	}
}

// serve carries one accepted connection to an upstream until either side ends it.
func (l *Link) serve(c net.Conn) {
	defer l.wg.Done()
	refuse, healed := l.state()
	if !refuse {
		// While held, the connection waits for its upstream as a SYN waits for a route.
		select {
		case <-healed:
		case <-l.done:
			resetConn(c)
			return
		}
		refuse, _ = l.state()
	}
	if refuse {
		l.refuse.Add(1)
		resetConn(c)
		return
	}
	up, err := l.dial()
	if err != nil {
		l.refuse.Add(1)
		resetConn(c)
		return
	}
	p := &pipe{id: l.nextID.Add(1), client: c, server: up, done: make(chan struct{})}
	l.mu.Lock()
	if l.closed || (l.cut && l.mode == Drop) {
		l.mu.Unlock()
		l.refuse.Add(1)
		p.reset()
		return
	}
	l.pipes[p] = struct{}{}
	l.mu.Unlock()
	l.open.Add(1)

	var wg sync.WaitGroup
	wg.Go(func() { l.carry(p, c, up, Up) })
	l.carry(p, up, c, Down)
	wg.Wait()
	p.reset()
	l.open.Add(-1)
	l.mu.Lock()
	delete(l.pipes, p)
	l.mu.Unlock()
}

func (l *Link) dial() (net.Conn, error) {
	var last error
	for _, u := range l.cfg.Upstreams {
		c, err := net.DialTimeout("tcp", u, l.cfg.DialTimeout)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// pipe is one carried connection: the accepted client side and the dialed server side.
type pipe struct {
	id             uint64
	client, server net.Conn
	done           chan struct{} // closed by reset
	once           sync.Once
}

// reset closes both sides at once, with a reset rather than a goodbye: what a dead link does.
func (p *pipe) reset() {
	p.once.Do(func() {
		close(p.done)
		resetConn(p.client)
		resetConn(p.server)
	})
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

type chunk struct {
	data []byte
	due  time.Time
}

// carry copies src to dst, each chunk delivered at its due time and not while the link holds.
// A clean end of src is passed on as a half close; any error resets the pipe.
func (l *Link) carry(p *pipe, src, dst net.Conn, dir Direction) {
	q := make(chan chunk, queueChunks)
	var readErr error // set before q is closed
	var reader sync.WaitGroup
	reader.Go(func() {
		defer close(q)
		buf := make([]byte, chunkSize)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				c := chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(time.Duration(l.oneWay.Load()))}
				l.queued.Add(int64(n))
				select {
				case q <- c:
				case <-p.done:
					l.queued.Add(-int64(n))
					return
				}
			}
			if err != nil {
				readErr = err
				return
			}
		}
	})
	defer reader.Wait()

	tr := &l.up
	if dir == Down {
		tr = &l.down
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for c := range q {
		if !l.await(p, timer, c.due) {
			l.drain(q, c)
			return
		}
		_, err := dst.Write(c.data)
		l.queued.Add(-int64(len(c.data)))
		if err != nil {
			p.reset()
			l.drain(q, chunk{})
			return
		}
		tr.bytes.Add(int64(len(c.data)))
		tr.chunks.Add(1)
		if l.cfg.Tap != nil {
			l.cfg.Tap(p.id, dir, c.data)
		}
	}
	if errors.Is(readErr, io.EOF) {
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the other direction may still be carrying
			return
		}
	}
	p.reset()
}

// await waits until due and until the link holds nothing; false when the pipe was reset.
func (l *Link) await(p *pipe, timer *time.Timer, due time.Time) bool {
	if d := time.Until(due); d > 0 {
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-p.done:
			return false
		}
	}
	for {
		_, healed := l.state()
		select {
		case <-healed:
			// Heal may have been followed by another cut: look again.
			if _, now := l.state(); now == healed {
				return true
			}
		case <-p.done:
			return false
		}
	}
}

// drain discards what a reset pipe still queued (pending, already taken from q, and the rest
// until the reader stops).
func (l *Link) drain(q chan chunk, pending chunk) {
	p := int64(len(pending.data))
	for c := range q {
		p += int64(len(c.data))
	}
	l.queued.Add(-p)
}
