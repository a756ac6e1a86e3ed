// Package pubsub owns weft's use of NATS: the embedded server, the connection, the JetStream
// stream WEFT_EVENTS that keeps every team's events, and per-team subscriptions that deliver a
// team's events in sequence order with no gap and no duplicate.
//
// Where to start:
//
//   - embedded.go: [Embedded], a NATS server with JetStream inside the process (weft dev, tests).
//   - bus.go: [Connect] returns a [Bus], the one connection of a process, embedded or external;
//     it creates or updates the stream and reconnects on its own forever.
//   - publish.go: [Bus.PublishEvent], the origin's side ([origin.Publisher]).
//   - handler.go and teamsub.go: [Bus.SubscribeTeam], the cache's side. Live events come from a
//     plain core NATS subscription on the team's subject; JetStream is only read to fill gaps.
//   - seek.go, replay.go and direct.go: finding a team's sequence number in the stream (whose
//     sequence is global, not per team) and reading ranges of it ([Bus.Replay], gap filling).
//   - mirror.go: the regional mirrors of the stream that its owner keeps in edge regions'
//     JetStream domains (Config.Stream.Mirrors); fallback.go: reading the hub's stream across
//     the WAN for what a region's mirror lags behind on or lacks (Config.FallbackDomain).
//   - stats.go: counters for the edge's metrics.
//
// The package knows nothing about caches: a [Handler] gets events and, when the stream can no
// longer fill a gap, one call to Lost telling its owner to reload the team from the origin.
//
// Locks: Bus.mu (the set of subscriptions) and teamState.mu (a seek hint) are never held
// together, and no lock is held across a Handler call.
package pubsub
