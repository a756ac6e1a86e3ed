package pubsub

import (
	"time"

	"github.com/nats-io/nats.go"
)

// The hub's heartbeat: how an edge region tells that it is cut off from the hub.
//
// In a region, an edge's connection goes to the region's leaf node, which stays up when the
// link to the hub (home region) is cut: nothing disconnects, the team feeds just fall silent,
// and a quiet team looks exactly like a cut-off one. So the stream's owner (the origin side,
// always in the hub) publishes a heartbeat on HubBeatSubject every HubBeatInterval, and every
// other bus listens: when beats it has heard stop for hubSilentAfter intervals, the bus counts
// an outage, as for a lost connection, so that every team follows no feed (served stale,
// weft_feed_teams_without_feed) until beats return and its subscription has checked its tail
// again. A bus that never heard a beat (an owner of an older weft) flags nothing.

// HubBeatSubject carries the stream owner's heartbeat (an empty core NATS message).
const HubBeatSubject = "weft.hub.beat"

const (
	defaultHubBeatInterval = time.Second
	hubSilentAfter         = 5 // intervals without a beat before the hub counts as silent
)

// beat publishes the owner's heartbeat until Close.
func (b *Bus) beat() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.HubBeatInterval)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			if err := b.nc.Publish(HubBeatSubject, nil); err != nil && b.nc.IsConnected() {
				b.log.Debug("pubsub: hub heartbeat", "err", err)
			}
		}
	}
}

// listenHub follows the owner's heartbeat and counts an outage when it stops.
func (b *Bus) listenHub() error {
	onBeat := func(*nats.Msg) {
		b.lastBeat.Store(time.Now().UnixNano())
		if b.hubSilent.CompareAndSwap(true, false) {
			b.log.Info("pubsub: the hub is heard again; teams check what they missed")
			select {
			case b.reconnected <- struct{}{}: // the same repair as a reconnect: every tail checked
			default:
			}
		}
	}
	sub, err := b.nc.Subscribe(HubBeatSubject, onBeat)
	if err != nil {
		return err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { sub.Unsubscribe() }()
		every := b.cfg.HubBeatInterval
		t := time.NewTicker(every)
		defer t.Stop()
		for ticks := 1; ; ticks++ {
			select {
			case <-b.done:
				return
			case <-t.C:
			}
			last := b.lastBeat.Load()
			if last == 0 && ticks%2 == 0 && b.nc.IsConnected() {
				// Never heard: subscribe again. Seen with leaf nodes behind a slow link under
				// -race: the interest of the subscription made as the bus connected never
				// reached the hub, while the team subscriptions made later did.
				if nsub, err := b.nc.Subscribe(HubBeatSubject, onBeat); err == nil {
					sub.Unsubscribe()
					sub = nsub
				}
			}
			if last == 0 || time.Since(time.Unix(0, last)) < hubSilentAfter*every || !b.nc.IsConnected() {
				continue // never heard; heard lately; or disconnected (counted as such)
			}
			if b.hubSilent.CompareAndSwap(false, true) {
				b.outages.Add(1)
				b.log.Warn("pubsub: no heartbeat from the hub: this region is cut off from it; teams are served from cache and follow no feed until it is heard again",
					"silent", time.Since(time.Unix(0, last)).Round(time.Millisecond), "teams", b.stats.subscriptions.Load())
			}
		}
	}()
	return nil
}

// HubSilent reports whether the hub's heartbeat, once heard, has stopped.
func (b *Bus) HubSilent() bool { return b.hubSilent.Load() }

// LastHubBeat is when the hub's heartbeat was last heard; zero if never.
func (b *Bus) LastHubBeat() time.Time {
	if ns := b.lastBeat.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}
