package pubsub

import "sync/atomic"

// Stats is a snapshot of a Bus's counters, since Connect. The edge exports them as metrics.
type Stats struct {
	Published     uint64 // events stored by PublishEvent
	Received      uint64 // live messages taken off team subscriptions
	Delivered     uint64 // events handed to a Handler, live or filled
	Duplicates    uint64 // messages dropped: seq already delivered, or covered by Start's afterSeq
	Gaps          uint64 // gaps detected: a jump in seq, or a tail found behind the stream
	GapsFilled    uint64 // of them, filled from JetStream (the others were Lost, or closed)
	Filled        uint64 // events delivered from JetStream rather than live
	BadMessages   uint64 // messages that did not decode or belonged to another team (live or stored)
	Lost          uint64 // subscriptions ended by a gap the stream could not fill
	Reconnects    uint64 // times the NATS connection came back
	SlowConsumers uint64 // times NATS started dropping a subscription's messages (refilled later)
	FillRetries   uint64 // JetStream errors while filling a gap, each followed by a retry
	FallbackReads uint64 // gap fills and replays that read the fallback domain's stream (Config.FallbackDomain)
	Subscriptions int64  // team subscriptions open now
}

// counters are the live values behind Stats.
type counters struct {
	published, received, delivered, duplicates, gaps, gapsFilled, filled, bad, lost, reconnects,
	slowConsumers, fillRetries, fallbackReads atomic.Uint64
	subscriptions atomic.Int64
}

// Stats returns the current counters.
func (b *Bus) Stats() Stats {
	c := &b.stats
	return Stats{
		Published:     c.published.Load(),
		Received:      c.received.Load(),
		Delivered:     c.delivered.Load(),
		Duplicates:    c.duplicates.Load(),
		Gaps:          c.gaps.Load(),
		GapsFilled:    c.gapsFilled.Load(),
		Filled:        c.filled.Load(),
		BadMessages:   c.bad.Load(),
		Lost:          c.lost.Load(),
		Reconnects:    c.reconnects.Load(),
		SlowConsumers: c.slowConsumers.Load(),
		FillRetries:   c.fillRetries.Load(),
		FallbackReads: c.fallbackReads.Load(),
		Subscriptions: c.subscriptions.Load(),
	}
}
