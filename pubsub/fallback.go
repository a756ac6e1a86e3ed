package pubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A copy of the stream that a Bus reads. Every Bus reads its own (Config.Domain: on an edge
// region's leaf node, the region's mirror). With Config.FallbackDomain it can also read the
// stream of record across the WAN, for what its own copy lacks: a mirror lags its origin
// after a partition for as long as nats-server takes to set its consumer up again (a create
// request sent while the link was down is waited for up to 30 s, then retried with a backoff
// of up to 2 minutes), and meanwhile live events, which arrive as soon as the leaf node is
// back, show gaps the mirror cannot fill. A gap fill that waited fallbackAfter for its own copy,
// or found a seq missing there, reads the fallback instead; a replay does the same before it
// gives up. The mirror keeps its origin's sequence numbers, so a team's seek hint holds for
// both.

// source is a copy of the stream and where its direct gets go.
type source struct {
	stream jetstream.Stream
	direct string // direct get subject
	domain string // its JetStream domain ("" = the connected server's), for logs
}

// fallbackAfter is how long a gap fill waits for its own copy of the stream to store what a
// live message proved exists before it reads the fallback: far longer than a mirror usually
// lags (milliseconds), far shorter than a mirror resuming after a partition (tens of seconds).
const fallbackAfter = time.Second

// fallbackSource opens the fallback lazily (the WAN may be down when the Bus connects) and
// keeps it once opened. nil, nil without Config.FallbackDomain.
type fallbackSource struct {
	mu  sync.Mutex
	src *source
}

func (b *Bus) fallback(ctx context.Context) (*source, error) {
	if b.cfg.FallbackDomain == "" {
		return nil, nil
	}
	f := &b.fb
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.src != nil {
		return f.src, nil
	}
	js, err := jetstream.NewWithDomain(b.nc, b.cfg.FallbackDomain, jetstream.WithDefaultTimeout(b.cfg.RequestTimeout))
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	st, err := js.Stream(cctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("pubsub: stream %s in fallback domain %s: %w", StreamName, b.cfg.FallbackDomain, err)
	}
	f.src = &source{stream: st, direct: apiPrefix(b.cfg.FallbackDomain) + ".DIRECT.GET." + StreamName, domain: b.cfg.FallbackDomain}
	return f.src, nil
}

// fallbackWarnEvery spaces the warnings that the Bus's own copy lags or lacks events: after a
// partition every team subscription of the region turns to the fallback at about once.
const fallbackWarnEvery = 10 * time.Second

// fallbackFor returns the fallback for a read that the Bus's own copy cannot serve (it "lags
// behind" or "lacks" the events), counting the read; nil when there is none or it cannot be
// opened now.
func (b *Bus) fallbackFor(ctx context.Context, why string) *source {
	fb, err := b.fallback(ctx)
	if fb == nil {
		if err != nil {
			b.log.Debug("pubsub: fallback stream unavailable", "domain", b.cfg.FallbackDomain, "err", err)
		}
		return nil
	}
	b.stats.fallbackReads.Add(1)
	now := time.Now().UnixNano()
	if last := b.fallbackWarned.Load(); now-last >= int64(fallbackWarnEvery) && b.fallbackWarned.CompareAndSwap(last, now) {
		b.log.Warn("pubsub: the stream here "+why+" events that live messages showed; reading them from the fallback domain across the WAN",
			"domain", b.cfg.Domain, "fallback_domain", b.cfg.FallbackDomain, "fallback_reads", b.stats.fallbackReads.Load())
	}
	return fb
}
