package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weft-edge/weft/internal/ring"
)

// warmSubject + node is where an edge takes requests to pre-load teams.
const warmSubject = "weft.edges.warm."

// Edge announcements (the type, its validation, its subject) belong to the membership that
// reads them, internal/ring; the bus only lends its connection.

// Announce publishes a. It does not wait for anyone to hear it.
func (b *Bus) Announce(a ring.Announcement) error {
	return ring.Announcements{Conn: b.nc, Logger: b.log}.Announce(a)
}

// WatchEdges calls fn with every valid announcement, on one goroutine, in arrival order.
// Malformed ones are logged and dropped. The returned stop ends the subscription.
func (b *Bus) WatchEdges(fn func(ring.Announcement)) (stop func(), err error) {
	return ring.Announcements{Conn: b.nc, Logger: b.log}.WatchEdges(fn)
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
