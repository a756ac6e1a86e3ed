package pubsub

import "sync/atomic"

// Whether a team is following its feed, and how far behind it is.
//
// While NATS is unreachable nothing reaches a team's subscription, yet the edge keeps serving
// the team from its store: stale but available, as for an origin outage. Such a team follows
// no feed from the moment the connection drops until its subscription has drained its buffer
// and filled its tail from the stream after the connection came back (or was reloaded when
// the stream no longer held the range). The Bus counts its outages; each subscription records
// the outage count it last caught up after, so "following" is one comparison, with no list of
// teams to walk at a disconnect.

// feedState is a subscription's part: owned by its delivery goroutine, read by metrics.
type feedState struct {
	// caughtUp is the Bus's outage count when the subscription last started a tail check
	// that succeeded on a connected Bus; -1 before its first. Behind when < Bus.outages.
	caughtUp atomic.Int64
	// newest is the highest seq the subscription has heard of (a live message, or the end
	// of a gap it is filling); applied is the last seq it delivered. newest − applied is its
	// lag: events that exist and its team has not applied yet.
	newest, applied atomic.Int64
}

// Connected reports whether the Bus's feed is up: connected to NATS, and hearing the hub (an
// edge region cut off from it hears nothing, hub.go). While it is not, warm teams are served
// from their stores and new team loads should wait (cache.ErrNoFeed).
func (b *Bus) Connected() bool { return b.nc.IsConnected() && !b.hubSilent.Load() }

// catchUp drains the live buffer and fills the tail from the stream, and when that worked on a
// connected Bus records the subscription as caught up with every outage before it began (an
// outage during the fill leaves it behind, for the next check to repair). It returns false
// when the subscription must stop.
func (s *TeamSub) catchUp() bool {
	outages := s.b.outages.Load()
	// Cut off from the hub, the tail read here (a region's mirror) is as stale as the team.
	following := s.b.nc.IsConnected() && !s.b.hubSilent.Load()
	if !s.drain() || !s.fillTail() {
		return false
	}
	if following && !s.b.hubSilent.Load() {
		s.feed.caughtUp.Store(outages)
	}
	return true
}

// heard raises the newest seq the subscription knows exists.
func (f *feedState) heard(seq int64) {
	for {
		n := f.newest.Load()
		if seq <= n || f.newest.CompareAndSwap(n, seq) {
			return
		}
	}
}

// FeedStatus is how the Bus's team subscriptions follow their feeds now.
type FeedStatus struct {
	Subscriptions int   // team subscriptions open
	WithoutFeed   int   // of them, following no feed: NATS lost and not caught up since
	LagMax        int64 // the most events one subscription has heard of and not yet applied
	LagSum        int64 // the same, summed over subscriptions
}

// FeedStatus reports how the team subscriptions follow their feeds. It walks the subscriptions
// (a metrics scrape, not a hot path).
func (b *Bus) FeedStatus() FeedStatus {
	outages := b.outages.Load()
	var st FeedStatus
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ts := range b.teams {
		for s := range ts.subs {
			st.Subscriptions++
			if s.feed.caughtUp.Load() < outages {
				st.WithoutFeed++
			}
			if lag := s.feed.newest.Load() - s.feed.applied.Load(); lag > 0 {
				st.LagSum += lag
				st.LagMax = max(st.LagMax, lag)
			}
		}
	}
	return st
}
