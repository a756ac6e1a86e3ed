package pubsub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/weft-edge/weft/origin"
)

var _ origin.Publisher = (*Bus)(nil)

// PublishEvent validates ev, publishes it on its team's subject with Nats-Msg-Id "<team>:<seq>"
// and returns once the stream has stored it. Publishing the same event again within the
// stream's duplicate window stores nothing: a caller may retry after any error. Without a
// deadline in ctx, the wait for the ack is bounded by Config.RequestTimeout.
func (b *Bus) PublishEvent(ctx context.Context, ev *origin.Event) error {
	if ev == nil {
		return fmt.Errorf("pubsub: publish: %w: nil event", origin.ErrBadEvent)
	}
	if err := ev.Validate(""); err != nil {
		return fmt.Errorf("pubsub: publish: %w", err)
	}
	if err := validTeam(ev.Team); err != nil {
		return fmt.Errorf("pubsub: publish: %w", err)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("pubsub: publish: encoding %s: %w", ev.MsgID(), err)
	}
	msg := &nats.Msg{Subject: origin.Subject(ev.Team), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.MsgID())
	if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(StreamName)); err != nil {
		return fmt.Errorf("pubsub: publish %s: %w", ev.MsgID(), err)
	}
	b.stats.published.Add(1)
	return nil
}
