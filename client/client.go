package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Options configures a Client. URL and Token (or TokenFunc) are required; every other zero
// value is a default.
type Options struct {
	// URL is the edge's or the proxy's WebSocket endpoint: ws://host:port/ws. http(s) URLs
	// are accepted, and a URL without a path gets /ws.
	URL string
	// URLs, instead of URL, lists several endpoints in order of preference, typically one
	// per region (its proxies' address); the first is home. When a dial finds nothing of weft answering
	// at one (connection refused or reset, no DNS name, no answer within DialTimeout, a
	// gateway's 502, 503 or 504 that is not weft's), the client moves to the next (past the
	// last, back to the first) and resumes there: seqs are the team's, the same everywhere.
	// What weft itself refuses (503 overloaded, 429, a goodbye) is retried at the same URL.
	// Away from the first, the client tries to go back on the Return schedule, and moves
	// only once the connection there is up. docs/protocol.md section 5, "Several URLs".
	URLs []string
	// Token is the bearer token (docs/protocol.md section 1). TokenFunc, when set, is asked for a
	// token before every dial instead, so a long-lived client can renew an expiring one. An
	// error from TokenFunc is retried with backoff like a refused connection (a token service
	// can be down for a while too); only the server refusing the token (HTTP 401 or 403 at
	// the handshake) stops the client.
	Token     string
	TokenFunc func(ctx context.Context) (string, error)
	// HTTPClient makes the handshakes; nil means http.DefaultClient.
	HTTPClient *http.Client

	// SkipBoot: do not call boot after a connection that did not resume. For load generators
	// that want sessions, not state.
	SkipBoot bool
	// OnConnect is called after every hello, before any of that connection's events is
	// handed over; OnBoot after every boot. Both run on the client's own goroutine: keep them
	// short and do not call the Client's methods from them.
	OnConnect func(Hello)
	OnBoot    func(*Boot)
	// OnReconnect is called before every wait for a reconnect, with why and for how long: a
	// UI shows "reconnecting in 3s" from it. Same rules as OnConnect.
	OnReconnect func(Reconnect)
	// OnSwitch is called when the client moves from one of URLs to another; Stats count the
	// moves (Failovers, Returns) and Client.URL says where it is. Same rules as OnConnect.
	OnSwitch func(Switch)

	// EventQueue bounds the events received but not yet taken from Events. Past it the
	// client drops the connection, waits for the queue to drain to half and then resumes
	// where it was, so a slow reader loses nothing and never blocks replies. Default 10,000.
	//
	// A request waiting for a connection ends that wait at once: the caller may be the
	// Events reader itself, which cannot drain the queue until its request returns. And a
	// connection past the bound is kept while requests wait for it or are in flight on it
	// (their replies may be behind more events), up to twice the bound; past that it is
	// dropped all the same and those requests fail with ErrDisconnected.
	EventQueue int
	// Backoff is the reconnect schedule.
	Backoff Backoff
	// Return is the schedule of the attempts to go back to URLs[0] while away from it.
	Return Return
	// DialTimeout bounds a handshake and its hello; default 10s.
	DialTimeout time.Duration
	// ReadLimit bounds one server frame; default 16 MiB.
	ReadLimit int64
	// Rand is the source of reconnect jitter; nil means a random one. Tests pass a seeded one.
	Rand *rand.Rand
	// Logger gets the client's rare warnings; nil discards them.
	Logger *slog.Logger
}

// Reconnect describes a wait before a reconnect attempt.
type Reconnect struct {
	// Attempt counts the attempts since the last stable connection (1: the first retry).
	Attempt int
	// Wait is how long the client waits before dialing.
	Wait time.Duration
	// Err is why the previous connection or attempt ended (a refused handshake is an *Error
	// with its HTTP status and retry_after_ms).
	Err error
	// Goodbye is what the server said before it closed the previous connection, if it did.
	Goodbye *Goodbye
	// URL is what the attempt will dial (one of Options.URLs, normalised).
	URL string
}

// Client is a connection to weft that stays connected: it reconnects with backoff when the
// connection ends, resumes the event stream where it left off and boots again when the edge
// cannot replay that far. Its methods are safe for concurrent use.
type Client struct {
	opts  Options
	urls  []url.URL // Options.URL or Options.URLs, normalised
	log   *slog.Logger
	rng   *rand.Rand // used only by the run loop
	store *Store

	// at indexes urls: where the run loop dials. Only the run loop writes it.
	at atomic.Int32
	// returnTries counts the attempts to go back to urls[0] since the client was last there;
	// returnRng is their jitter. Used by the returner while one runs, else by the run loop
	// (see returnHome).
	returnTries int
	returnRng   *rand.Rand

	ctx    context.Context // the client's lifetime: canceled by Close
	cancel context.CancelFunc

	mu    sync.Mutex
	conn  *conn         // the connection requests go to; nil while reconnecting
	ready chan struct{} // closed when conn is set; replaced when it is cleared
	hello Hello
	boot  *Boot
	err   error // why the client stopped on its own (e.g. invalid_auth on reconnect)

	// pos is the stream position: the seq of the last event queued for Events, or the hello's
	// seq. It is what a reconnect resumes after, so it is past the events still queued.
	pos atomic.Int64
	// placed: a hello has given the client a position, so a reconnect resumes from pos, even
	// 0 (a team with no event yet: what comes after 0 is everything).
	placed atomic.Bool

	// needBoot: the Store may lack what happened before the current stream position (no
	// boot yet, or a hello said resumed:false) and only a boot can fill it. Used only by the
	// run loop.
	needBoot bool

	queue  eventQueue
	events chan *Event

	stats struct {
		connects, resumes, boots, events, duplicates, requests, bytesRead atomic.Int64
		failovers, returns                                                atomic.Int64
	}

	done     chan struct{} // closed when the run loop and the dispatcher have returned
	loopDone chan struct{}
	firstUp  chan error // the first connection's outcome, for Dial
}

// Dial connects, reads the hello and (unless Options.SkipBoot) boots, then returns a Client
// that keeps itself connected until Close. ctx bounds only this first connection: Dial retries
// what can be retried (refused connections, 503s, drains, TokenFunc errors) with backoff until
// ctx is done, and fails at once when the server refuses the token.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	urls, err := parseURLs(opts.URL, opts.URLs)
	if err != nil {
		return nil, err
	}
	if opts.Token == "" && opts.TokenFunc == nil {
		return nil, errors.New("weft: Options.Token or Options.TokenFunc is required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.EventQueue <= 0 {
		opts.EventQueue = 10000
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 16 << 20
	}
	opts.Backoff = opts.Backoff.withDefaults()
	opts.Return = opts.Return.withDefaults()
	c := &Client{opts: opts, urls: urls, rng: opts.Rand, store: newStore(), log: opts.Logger,
		ready: make(chan struct{}), events: make(chan *Event), done: make(chan struct{}),
		loopDone: make(chan struct{}), firstUp: make(chan error, 1)}
	if c.rng == nil {
		c.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if len(urls) > 1 {
		// The returner's own source, drawn from the run loop's (a seeded Rand stays
		// reproducible); only with several URLs, so that one URL's jitter is as it was.
		c.returnRng = rand.New(rand.NewPCG(c.rng.Uint64(), c.rng.Uint64()))
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.queue.init()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	go c.dispatch()
	go func() {
		<-c.loopDone
		<-c.queue.stopped
		close(c.done)
	}()
	select {
	case err := <-c.firstUp:
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("weft: dial %s: %w", c.redactedURLs(), ctx.Err())
	}
}

// Events is the event stream: every event of the team the caller may see, in order, each
// exactly once, with the objects it names already in Store (as far as the edge sent them). It
// is closed after Close.
func (c *Client) Events() <-chan *Event { return c.events }

// Store is the client's object store.
func (c *Client) Store() *Store { return c.store }

// User returns the user id from the Store: what the edge has sent this client, without asking.
func (c *Client) User(id string) (User, bool) { return c.store.User(id) }

// Channel returns the channel id from the Store.
func (c *Client) Channel(id string) (Channel, bool) { return c.store.Channel(id) }

// Hello returns the current (or last) connection's hello.
func (c *Client) Hello() Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello
}

// Boot returns the latest boot payload (nil with SkipBoot).
func (c *Client) Boot() *Boot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.boot
}

// Seq is the stream position: the seq of the last event the client received and queued for
// Events, or of the hello when none has come since. A reconnect resumes after it. Events still
// in the queue are not yet handed over, so Seq can be ahead of the last event read from Events.
func (c *Client) Seq() int64 { return c.pos.Load() }

// Done is closed when the client has stopped: after Close, or on its own when the server
// refused its token on a reconnect (see Err).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped on its own, or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats are counters of a Client's life.
type Stats struct {
	Connects   int64 // hellos received
	Resumes    int64 // of which resumed the stream
	Boots      int64 // boots done
	Events     int64 // events received and queued for Events (not yet all read from it)
	Duplicates int64 // events dropped because they had been handed over already
	Requests   int64 // requests sent
	BytesRead  int64 // bytes of server frames read
	Failovers  int64 // moves to the next of Options.URLs because one was unreachable
	Returns    int64 // moves back to the first of Options.URLs while connected elsewhere
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{Connects: s.connects.Load(), Resumes: s.resumes.Load(), Boots: s.boots.Load(),
		Events: s.events.Load(), Duplicates: s.duplicates.Load(), Requests: s.requests.Load(),
		BytesRead: s.bytesRead.Load(), Failovers: s.failovers.Load(), Returns: s.returns.Load()}
}

// Close closes the connection (with a normal close) and stops the client. Requests waiting
// fail with ErrClosed or ErrDisconnected; Events is closed.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

func (c *Client) token(ctx context.Context) (string, error) {
	if c.opts.TokenFunc != nil {
		return c.opts.TokenFunc(ctx)
	}
	return c.opts.Token, nil
}

// current waits for a connection to send a request on. The connection comes with one more
// user (see conn.users): the caller releases it when its request is done.
func (c *Client) current(ctx context.Context) (*conn, error) {
	waiting := false
	defer func() {
		// Lowered only after users was raised: received, which reads waiters and then
		// users, sees at least one of them while this request is not done.
		if waiting {
			c.queue.doneWaiting()
		}
	}()
	for {
		c.mu.Lock()
		cn, ready := c.conn, c.ready
		if cn != nil {
			cn.users.Add(1)
		}
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		if !waiting {
			// The run loop may be waiting for the Events reader to drain the queue, and the
			// reader may be this very caller: tell the run loop to connect now instead.
			waiting = true
			c.queue.startWaiting()
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.loopDone:
			// stop records err before the run loop ends: read it now, not from before the
			// wait, or a caller that waited through it would get ErrClosed instead.
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return nil, ErrClosed
		}
	}
}

// run is the client's life: connect, serve the connection until it ends, wait, reconnect.
func (c *Client) run() {
	defer close(c.loopDone)
	c.needBoot = !c.opts.SkipBoot // nothing booted yet, whatever the first hello says

	attempt := 0       // consecutive attempts that did not give a stable connection
	var hint retryHint // what the server said about when to come back
	var why Reconnect  // why the last connection or attempt ended
	var home *conn     // a connection to urls[0] the returner made: served next, without a dial
	for try := 0; ; try++ {
		if try > 0 && home == nil {
			if c.ctx.Err() != nil { // closed: no reconnect to announce
				c.stop(nil)
				return
			}
			d := c.opts.Backoff.delay(max(attempt-1, 0), c.rng, hint)
			if c.opts.OnReconnect != nil {
				why.Attempt, why.Wait = attempt, d
				why.URL = c.urls[c.at.Load()].String()
				c.opts.OnReconnect(why)
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				c.stop(nil)
				return
			}
		}
		cn := home
		if cn != nil {
			home = nil
		} else {
			// A reader far behind has its events queued here: let it catch up before taking
			// on more from a new connection (unless a request waits: see eventQueue.waitBelow).
			if !c.queue.waitBelow(c.ctx, c.opts.EventQueue/2) {
				c.stop(nil)
				return
			}
			var err error
			cn, err = c.dial(c.ctx, int(c.at.Load()), c.pos.Load(), c.placed.Load())
			if err != nil {
				var de *dialError
				if c.ctx.Err() != nil {
					c.stop(nil)
					return
				}
				if errors.As(err, &de) && de.fatal {
					c.stop(err)
					return
				}
				why = Reconnect{Err: err}
				if errors.As(err, &de) {
					hint = de.hint
					why.Goodbye = de.bye
					if de.bye != nil && attempt >= 2 {
						// Turned away again and again (a proxy and an edge that disagree on
						// the ring for longer than a ring change takes): back off after all.
						hint = retryHint{}
					}
				}
				c.log.Info("weft: dial failed", "url", c.urls[c.at.Load()].Redacted(), "attempt", attempt, "error", err)
				if de != nil && de.unreachable && len(c.urls) > 1 {
					// The next attempt goes to the next URL, after the backoff all the same:
					// the clients of a region that vanished at once reach the next one spread.
					c.failover(err)
				}
				attempt++
				continue
			}
		}
		hint = retryHint{}
		up, next, err := c.serve(cn)
		if next != nil {
			if c.ctx.Err() != nil { // made as the client closed
				next.ws.CloseNow()
				c.stop(nil)
				return
			}
			// Home again, with the connection already made: nothing to wait for. The one it
			// replaces was closed on purpose, not lost, so it counts as no failed attempt.
			c.returned(cn.at)
			home = next
			continue
		}
		if err != nil {
			c.log.Info("weft: connection ended", "node", cn.hello.Node, "error", err)
		}
		bye, _ := cn.endedBy()
		if bye != nil && bye.Reason == ReasonAccountInactive { // it would be refused: 403
			c.stop(&Error{Code: CodeAccountInactive, Message: "the user was deactivated (goodbye account_inactive)", Status: http.StatusForbidden})
			return
		}
		why = Reconnect{Err: err, Goodbye: bye}
		if bye != nil && (bye.ReconnectAfterMS > 0 || bye.Reason == ReasonMoved || bye.Reason == ReasonTokenExpired) {
			hint = retryHint{after: time.Duration(bye.ReconnectAfterMS) * time.Millisecond, goodbye: true}
		}
		// Stable means up (booted and serving requests) for StableAfter. Time spent in the
		// boot does not count: a connection whose boot hangs until it times out lasts as
		// long as the boot timeout but was never up, and is one more failed attempt.
		if !up.IsZero() && time.Since(up) >= c.opts.Backoff.StableAfter {
			attempt = 0
		}
		attempt++
	}
}

// serve runs one connection: its read loop and heartbeat, the boot when one is needed, then
// requests until it ends. It returns when the connection was up (zero: it never was, its boot
// failed) and why it ended. A connection to any URL but the first runs a returner beside it: when
// that makes a connection home, serve closes this one and returns the new one as home, for the
// run loop to serve next.
func (c *Client) serve(cn *conn) (up time.Time, home *conn, err error) {
	h := cn.hello
	c.stats.connects.Add(1)
	if h.Resumed {
		c.stats.resumes.Add(1)
	} else if !c.opts.SkipBoot {
		// What happened before the hello's seq is lost to this client: only a boot brings
		// the Store up to date. The flag stays until a boot succeeds, because the next
		// connection resumes from this hello's seq and would otherwise never boot.
		c.needBoot = true
	}
	// Events of this connection are newer than the hello's seq; a resumed one replays from
	// our position, which is already past it.
	if !h.Resumed && h.Seq > c.pos.Load() {
		c.pos.Store(h.Seq)
	}
	c.placed.Store(true)
	c.mu.Lock()
	c.hello = h
	c.mu.Unlock()
	if c.opts.OnConnect != nil {
		c.opts.OnConnect(h)
	}
	var wg sync.WaitGroup
	wg.Go(func() { cn.readLoop(context.Background()) })
	if h.HeartbeatMS > 0 {
		wg.Go(func() { cn.heartbeat(c.ctx, time.Duration(h.HeartbeatMS)*time.Millisecond) })
	}
	stop := context.AfterFunc(c.ctx, func() { cn.ws.Close(websocket.StatusNormalClosure, "client closed") })
	defer func() {
		stop()
		cn.ws.CloseNow()
		wg.Wait()
	}()

	if c.needBoot {
		if err := c.doBoot(cn); err != nil {
			return time.Time{}, nil, err // and reconnect: a boot the origin could not serve now may work later
		}
		c.needBoot = false
	}
	c.mu.Lock()
	c.conn = cn
	close(c.ready)
	c.mu.Unlock()
	up = time.Now()
	// Dial waits for the first connection to be up; nobody waits for the later ones. firstUp
	// holds one outcome and only the first matters, so the send never blocks.
	select {
	case c.firstUp <- nil:
	default:
	}

	if cn.at == 0 {
		c.returnTries = 0 // home: the next stay away starts its schedule afresh
		<-cn.done
	} else {
		r := c.startReturn()
		select {
		case <-cn.done:
		case home = <-r.home:
		}
		if late := r.stop(); late != nil {
			home = late // made as cn ended: the reconnect goes home at once
		}
	}

	c.mu.Lock()
	c.conn = nil
	c.ready = make(chan struct{})
	c.mu.Unlock()
	if home != nil {
		// Requests now wait for home. The events this connection still delivers until the
		// server answers the close are ones home replays too: whichever comes first is
		// handed over, the other dropped as a duplicate, and home's read loop starts only
		// after this one's has ended, so the two never race.
		cn.ws.Close(websocket.StatusNormalClosure, "moving to the first URL")
		<-cn.done
	}
	_, err = cn.endedBy()
	return up, home, err
}

func (c *Client) doBoot(cn *conn) error {
	cn.users.Add(1) // a request in flight: see received
	defer cn.users.Add(-1)
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
	defer cancel()
	var b Boot
	if err := callInto(ctx, cn, "boot", nil, &b); err != nil {
		return fmt.Errorf("weft: boot: %w", err)
	}
	c.store.putUsers(b.Self)
	c.store.putTeam(b.Team)
	c.store.putChannels(b.Channels...)
	c.stats.boots.Add(1)
	c.mu.Lock()
	c.boot = &b
	c.mu.Unlock()
	if c.opts.OnBoot != nil {
		c.opts.OnBoot(&b)
	}
	return nil
}

// stop records why the client stopped on its own (nil: it was closed) and wakes Dial.
func (c *Client) stop(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	if err == nil {
		err = ErrClosed
	}
	select {
	case c.firstUp <- err:
	default:
	}
	c.cancel()
}
