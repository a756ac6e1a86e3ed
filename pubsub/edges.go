package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Edge membership travels on core NATS (not the stream): an announcement is only worth its
// latest value, and a missed one is replaced by the next.
const (
	// AnnounceSubject carries every edge's Announcement.
	AnnounceSubject = "weft.edges.announce"
	// warmSubject + node is where an edge takes requests to pre-load teams.
	warmSubject = "weft.edges.warm."
)

// Edge states an announcement can carry.
const (
	// EdgeServing edges are in the ring.
	EdgeServing = "serving"
	// EdgeDraining edges are leaving: out of the ring, still serving what they hold until their
	// sessions have moved.
	EdgeDraining = "draining"
)

// Announcement is what an edge says about itself, every interval.
type Announcement struct {
	Node  string `json:"node"`
	Addr  string `json:"addr"` // host:port of its client endpoints
	State string `json:"state"`
	// Sessions and Teams are its load; Admitting is false while it refuses new connections.
	Sessions  int64 `json:"sessions"`
	Teams     int   `json:"teams"`
	Admitting bool  `json:"admitting"`
	// LagP99MS is the 99th percentile of how long its runnable goroutines waited for a CPU
	// over the last interval (see edge/lag.go): whether it keeps up with what it has.
	// Proxies pace new connections to it by this. 0: not measured.
	LagP99MS float64 `json:"lag_p99_ms,omitempty"`
	// IntervalMS is how often it announces, so that watchers know when it is overdue.
	IntervalMS int64 `json:"interval_ms"`
	// Started tells a restarted edge (same name) from its previous life.
	Started time.Time `json:"started"`
}

// Validate reports what makes a an announcement no watcher should trust.
func (a *Announcement) Validate() error {
	switch {
	case a.Node == "" || len(a.Node) > 128:
		return errors.New("announcement: node must be 1-128 bytes")
	case a.Addr == "" || len(a.Addr) > 256:
		return errors.New("announcement: addr must be 1-256 bytes")
	case a.State != EdgeServing && a.State != EdgeDraining:
		return fmt.Errorf("announcement: unknown state %q", a.State)
	case a.IntervalMS <= 0:
		return errors.New("announcement: interval_ms must be positive")
	case !(a.LagP99MS >= 0 && a.LagP99MS < 1e9): // also NaN
		return errors.New("announcement: lag_p99_ms must be a finite non-negative number")
	}
	return nil
}

// Announce publishes a. It does not wait for anyone to hear it.
func (b *Bus) Announce(a Announcement) error {
	if err := a.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return b.nc.Publish(AnnounceSubject, data)
}

// WatchEdges calls fn with every valid announcement, on one goroutine, in arrival order.
// Malformed ones are logged and dropped. The returned stop ends the subscription.
func (b *Bus) WatchEdges(fn func(Announcement)) (stop func(), err error) {
	sub, err := b.nc.Subscribe(AnnounceSubject, func(m *nats.Msg) {
		var a Announcement
		if err := json.Unmarshal(m.Data, &a); err != nil {
			b.log.Warn("pubsub: malformed edge announcement", "err", err, "bytes", len(m.Data))
			return
		}
		if err := a.Validate(); err != nil {
			b.log.Warn("pubsub: invalid edge announcement", "err", err, "node", a.Node)
			return
		}
		fn(a)
	})
	if err != nil {
		return nil, fmt.Errorf("pubsub: watch edges: %w", err)
	}
	// Announcements are small and frequent; a watcher that falls behind only ever needs the
	// newest, so it may drop rather than hold many.
	sub.SetPendingLimits(4096, 8<<20)
	return func() { sub.Unsubscribe() }, nil
}

type warmRequest struct {
	Teams []string `json:"teams"`
}

type warmReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Warm asks node to load teams and waits, within ctx, until it says they are loaded.
func (b *Bus) Warm(ctx context.Context, node string, teams []string) error {
	data, _ := json.Marshal(warmRequest{Teams: teams})
	m, err := b.nc.RequestWithContext(ctx, warmSubject+node, data)
	if err != nil {
		return fmt.Errorf("pubsub: warm %d teams on %s: %w", len(teams), node, err)
	}
	var r warmReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("pubsub: warm reply from %s: %w", node, err)
	}
	if !r.OK {
		return fmt.Errorf("pubsub: warm on %s: %s", node, r.Error)
	}
	return nil
}

// ServeWarm answers node's warm requests with fn (on a goroutine per request, bounded by
// timeout). The returned stop ends the subscription.
func (b *Bus) ServeWarm(node string, timeout time.Duration, fn func(ctx context.Context, teams []string) error) (stop func(), err error) {
	sub, err := b.nc.Subscribe(warmSubject+node, func(m *nats.Msg) {
		var req warmRequest
		if err := json.Unmarshal(m.Data, &req); err != nil || len(req.Teams) > 100_000 {
			reply(m, warmReply{Error: "malformed warm request"})
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			ctx, cancel := context.WithTimeout(b.ctx, timeout)
			defer cancel()
			if err := fn(ctx, req.Teams); err != nil {
				reply(m, warmReply{Error: err.Error()})
				return
			}
			reply(m, warmReply{OK: true})
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("pubsub: serve warm: %w", err)
	}
	return func() { sub.Unsubscribe() }, nil
}

func reply(m *nats.Msg, r warmReply) {
	data, _ := json.Marshal(r)
	m.Respond(data)
}
