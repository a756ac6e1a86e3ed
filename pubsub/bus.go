package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/natsconn"
	"github.com/weft-edge/weft/internal/sleep"
)

// Bus is a process's connection to NATS: publishing events, team subscriptions, replay.
// It is safe for concurrent use.
type Bus struct {
	cfg       Config
	streamCfg jetstream.StreamConfig
	log       *slog.Logger

	nc     *nats.Conn
	js     jetstream.JetStream // in Config.Domain
	stream jetstream.Stream
	// directSubject is where direct gets of the stream go, in Config.Domain.
	directSubject string
	src           *source        // the stream and directSubject: the copy this Bus reads
	fb            fallbackSource // the stream in Config.FallbackDomain, opened when first needed
	// fallbackWarned is when the last warning about reading the fallback was logged (ns).
	fallbackWarned atomic.Int64

	stats       counters
	connMetrics *natsconn.Metrics
	// outages counts lost connections: a team subscription that has not caught up since the
	// last one follows no feed (feed.go).
	outages atomic.Int64
	// lastBeat (unix ns, 0 = never) and hubSilent follow the stream owner's heartbeat (hub.go).
	lastBeat  atomic.Int64
	hubSilent atomic.Bool

	reconnected chan struct{} // cap 1: the connection came back
	done        chan struct{} // closed by Close
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup // every goroutine the Bus and its subscriptions start
	closeOnce   sync.Once

	mu     sync.Mutex // guards teams and closed
	teams  map[string]*teamState
	closed bool
}

// Connect connects to NATS (cfg.NATS or cfg.URL, or cfg.Embedded), opens the WEFT_EVENTS stream
// (an owner, cfg.ManageStream, creates it when missing; see Config.ManageStream) and returns the
// Bus. It retries the connection and the stream set-up until ctx ends, except that what waiting
// will not mend fails at once: a bad URL, an untrusted server certificate or refused
// credentials (natsconn.Options.Connect), and, for a Bus that does not own the stream, a
// stream that does not exist. Once connected, the connection reconnects on its own forever,
// until Close.
func Connect(ctx context.Context, cfg Config) (*Bus, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	scfg, err := cfg.Stream.jetstream()
	if err != nil {
		return nil, err
	}
	b := &Bus{
		cfg:         cfg,
		streamCfg:   scfg,
		log:         loggerOrDiscard(cfg.Logger),
		reconnected: make(chan struct{}, 1),
		done:        make(chan struct{}),
		teams:       make(map[string]*teamState),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())

	b.connMetrics = natsconn.NewMetrics()
	client := natsconn.Client{Name: cfg.Name, Logger: b.log, Metrics: b.connMetrics,
		OnDisconnect: b.onDisconnect, OnReconnect: b.onReconnect, OnError: b.onAsyncError}
	if cfg.reconnectDelay != nil {
		client.Extra = append(client.Extra, nats.CustomReconnectDelay(cfg.reconnectDelay))
	}
	conn := cfg.NATS
	if conn.URLs == "" {
		u, inProc, err := cfg.Embedded.connectTarget()
		if err != nil {
			b.cancel()
			return nil, err
		}
		conn = natsconn.Options{URLs: u}
		if inProc != nil {
			client.Extra = append(client.Extra, inProc)
		}
	}
	b.nc, err = conn.Connect(ctx, client)
	if err != nil {
		b.cancel()
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	b.directSubject = apiPrefix(cfg.Domain) + ".DIRECT.GET." + StreamName
	if cfg.Domain != "" {
		b.js, err = jetstream.NewWithDomain(b.nc, cfg.Domain, jetstream.WithDefaultTimeout(cfg.RequestTimeout))
	} else {
		b.js, err = jetstream.New(b.nc, jetstream.WithDefaultTimeout(cfg.RequestTimeout))
	}
	if err != nil {
		b.nc.Close()
		b.cancel()
		return nil, fmt.Errorf("pubsub: jetstream: %w", err)
	}
	for attempt := 0; ; attempt++ {
		b.stream, err = b.openStream(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errNoStream) {
			b.nc.Close()
			b.cancel()
			return nil, err
		}
		b.log.Warn("pubsub: setting up stream", "stream", StreamName, "attempt", attempt+1, "err", err)
		if werr := sleep.For(ctx, backoff(attempt)); werr != nil {
			b.nc.Close()
			b.cancel()
			return nil, fmt.Errorf("pubsub: stream %s: %w (last error: %v)", StreamName, werr, err)
		}
	}
	b.src = &source{stream: b.stream, direct: b.directSubject, domain: cfg.Domain}
	if cfg.ManageStream {
		if err := b.startMirrors(ctx); err != nil {
			b.Close()
			return nil, err
		}
	}
	b.wg.Add(1)
	go b.watchReconnects()
	if cfg.ManageStream {
		b.wg.Add(1)
		go b.beat()
	} else if err := b.listenHub(); err != nil {
		b.Close()
		return nil, fmt.Errorf("pubsub: hub heartbeat: %w", err)
	}
	b.log.Info("pubsub: connected", "url", b.nc.ConnectedUrlRedacted(), "stream", StreamName,
		"domain", cfg.Domain, "mirror_of", mirrorOf(b.stream.CachedInfo().Config))
	return b, nil
}

// Close closes every team subscription and the connection and waits for every goroutine the
// Bus started. It is idempotent. It must not be called from a Handler.
func (b *Bus) Close() {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		var subs []*TeamSub
		for _, ts := range b.teams {
			for s := range ts.subs {
				subs = append(subs, s)
			}
		}
		b.mu.Unlock()
		for _, s := range subs {
			s.Close()
		}
		close(b.done)
		b.cancel()
		b.nc.Close()
		b.wg.Wait()
	})
}

// Conn is the underlying connection, for what this package does not wrap (edge heartbeats).
// The Bus owns it: do not close it.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// ConnMetrics are the metrics of the Bus's NATS connection (natsconn.Metrics: connected,
// reconnects, pending bytes, slow consumers, traffic), for a /metrics registry.
func (b *Bus) ConnMetrics() prometheus.Collector { return b.connMetrics }

// onDisconnect runs after natsconn has logged the disconnect.
func (b *Bus) onDisconnect(_ *nats.Conn, err error) {
	b.outages.Add(1)
	if err != nil {
		b.log.Warn("pubsub: the teams follow no feed until NATS returns and they caught up; served from their stores meanwhile",
			"teams", b.stats.subscriptions.Load())
	}
}

func (b *Bus) onReconnect(nc *nats.Conn) {
	b.stats.reconnects.Add(1)
	b.log.Info("pubsub: reconnected to NATS", "url", nc.ConnectedUrlRedacted())
	select {
	case b.reconnected <- struct{}{}:
	default:
	}
}

// onAsyncError runs after natsconn has logged the error (other than a slow consumer).
func (b *Bus) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		// A team subscription's buffer overflowed: the dropped events come back as a gap.
		b.stats.slowConsumers.Add(1)
		subj := ""
		if sub != nil {
			subj = sub.Subject
		}
		b.log.Debug("pubsub: slow consumer, messages dropped", "subject", subj)
	}
}

// watchReconnects makes sure the stream still exists after a reconnect (a memory stream does
// not survive a server restart) and then asks every subscription to check its tail.
func (b *Bus) watchReconnects() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case <-b.reconnected:
		}
		for attempt := 0; ; attempt++ {
			err := b.ensureStream()
			if err == nil {
				break
			}
			b.log.Warn("pubsub: checking stream after reconnect", "attempt", attempt+1, "err", err)
			if sleep.For(b.ctx, backoff(attempt)) != nil {
				return
			}
		}
		b.mu.Lock()
		for _, ts := range b.teams {
			for s := range ts.subs {
				s.poke()
			}
		}
		b.mu.Unlock()
	}
}

func (b *Bus) ensureStream() error {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.RequestTimeout)
	defer cancel()
	_, err := b.js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !b.cfg.ManageStream {
			return fmt.Errorf("%w (its owner, `weft origin`, creates it again)", err)
		}
		b.log.Warn("pubsub: stream missing after reconnect, creating it", "stream", StreamName)
		_, err = b.js.CreateStream(ctx, b.streamCfg)
	}
	return err
}

// teamState is what the Bus keeps per subscribed team: its subscriptions and the seek hint
// they share with Replay.
type teamState struct {
	subs map[*TeamSub]struct{} // guarded by Bus.mu

	mu   sync.Mutex // guards hint
	hint hint
}

func (b *Bus) addSub(s *TeamSub) (*teamState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	ts := b.teams[s.team]
	if ts == nil {
		ts = &teamState{subs: make(map[*TeamSub]struct{})}
		b.teams[s.team] = ts
	}
	ts.subs[s] = struct{}{}
	b.stats.subscriptions.Add(1)
	b.wg.Add(1) // for s.run, under mu so that it never races with Close's Wait
	return ts, nil
}

func (b *Bus) removeSub(s *TeamSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts := b.teams[s.team]
	if ts == nil {
		return
	}
	if _, ok := ts.subs[s]; !ok {
		return
	}
	delete(ts.subs, s)
	b.stats.subscriptions.Add(-1)
	if len(ts.subs) == 0 {
		delete(b.teams, s.team)
	}
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// teamState returns the state of a subscribed team, nil when the team has no subscription.
func (b *Bus) teamState(team string) *teamState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.teams[team]
}

// backoff is the wait before retry attempt+1 of every retry loop here: natsconn's, the
// schedule of the connection's own start-up retries.
func backoff(attempt int) time.Duration { return natsconn.Backoff(attempt) }

// notStoredWait is the wait before asking the stream again for events it has not stored yet:
// 1ms doubling to 100ms. The stream usually stores them within a millisecond.
func notStoredWait(attempt int) time.Duration {
	return min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
}
