// Package cache keeps an edge node's teams in memory: one [Store] per team (its users,
// channels and memberships both ways), loaded from the origin on first demand, kept current
// by the team's events, rebuilt when its feed lost events, and unloaded when nobody has used
// it for a while. The origin's side of this (pages, events, the seq rules) is docs/origin.md;
// why a team is the unit of everything is docs/architecture.md.
//
// Where to start:
//
//   - teams.go: [Teams], the node's set of teams, and [Team], the handle a user of a team
//     holds ([Teams.Acquire] … [Team.Release]); [Config] and [Hooks], by which the edge
//     learns of loads, events, reloads and unloads.
//   - load.go: a load. Subscribe to the team's events first (the subscription buffers), read
//     the origin's listings ([Snapshot]: page by page, or streamed and in partitions when the
//     origin announces them), then start the subscription after the snapshot's seq, so that
//     every later event is applied exactly once, in order.
//   - store.go: [Store] and its reads; build.go: laying out a fresh store from pages;
//     apply.go: applying pages and events, keeping the newer version of every object.
//   - follow.go: [Follower], state derived from a store and kept current with it (the
//     autocomplete index of package index is one), and the reads by dense index it uses.
//
// Goroutines, and who owns them (all counted in Teams.wg and stopped by [Teams.Shutdown]):
//
//   - one per first load of a team (the askers wait on it, not run it), and one per reload,
//     which retries with backoff while the origin fails; a load reads the three listings
//     (users, channels, memberships), each partition of each, on goroutines of its own
//     (an errgroup, at most 32 at once) and waits for them;
//   - the janitor, started by [Teams.Start], which unloads teams idle past the grace period.
//
// Each loaded team's events arrive on the delivery goroutine of its pubsub subscription,
// which the Team owns (closed on unload, replaced on reload): it applies the event to the
// store, then calls the store's Follower and Hooks.OnEvent, with no lock of this package
// held. A Store's mu is taken by its own methods only, and held across a call out only by
// EachObject, whose callbacks must not call the store: callers may read a store under their
// own locks (the edge's fan-out does, under its hub's).
package cache
