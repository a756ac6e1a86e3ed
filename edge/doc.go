// Package edge is an edge node: it holds the teams its clients use in memory (package cache),
// answers their queries from there, and pushes each team's events to the WebSocket sessions
// that may see them. The client contract it serves is docs/protocol.md; where it sits among
// proxies, the origin and NATS is docs/architecture.md.
//
// Where to start:
//
//   - server.go: [Config], [New], [Server.Start] and [Server.Shutdown]; the hooks by which the
//     team set (cache) tells the node about loads, events, reloads and unloads.
//   - ws.go: GET /ws. admitWS refuses what can be refused before the upgrade (a subprotocol
//     other than weft.v1, draining, memory, connection rates, the token, ownership in the ring, the team and the user);
//     startSession upgrades, registers the session with its team's hub, replays a resume and
//     queues the hello; endSession is the one place a session ends.
//   - session.go: a session, its bounded outbound queue, its read loop and the dispatch of
//     requests; end.go: why a session ended (one endReason each, counted).
//   - wsconn.go: the WebSocket connection (gobwas/ws's handshake and frame headers, weft's
//     read loop and vectored writes); write.go: a session's turns of writing; writers.go:
//     the node's pool of writers that takes them.
//   - fanout.go: a team's hub, its sessions and the fan-out of each event to those that may
//     see it; jit.go: the just-in-time annotations an event carries per session
//     (docs/protocol.md section 6); recent.go: the events kept for resumes.
//   - methods.go, autocomplete.go and api.go: the methods (docs/protocol.md section 4), the
//     same handlers over the WebSocket and over POST /api/<method>; frames.go: shorthands
//     for building package protocol's errors and goodbye frames.
//   - throttle.go: when a session stops reading (over its request quota, or its client not
//     reading its replies); admission.go and surge.go: refusing work under memory pressure
//     and during a surge of team loads; tracker.go: the work a shutdown waits for.
//   - cluster.go: a node in a ring of edges behind proxies: announcements, ownership checks,
//     moving sessions when the ring changes; lag.go: the scheduling lag it announces.
//   - metrics.go: every Prometheus series of the node.
//
// Goroutines, and who owns them:
//
//   - The HTTP server (the caller's) runs handleWS and handleAPI. handleWS returns once its
//     session is started.
//   - Each session has a reader, started by startSession, which owns the session: it reads
//     and runs the client's requests one at a time, then ends the session (endSession waits
//     for the rest, session.wg). Its frames are written in turns by the node's writer pool
//     (writers.go, started by Start and stopped by Shutdown once the sessions are gone), or
//     by a goroutine of the session's own while a write waits for a slow client (write.go).
//     The idle and close timers are callbacks that only record an end and stop the session.
//   - Each loaded team's feed goroutine belongs to its pubsub subscription (owned by cache):
//     it applies events to the store and calls the edge's OnEvent, which fans out under the
//     hub's lock. Fan-out never blocks on a session; it only appends to bounded queues.
//   - The memory sampler (admission.go), when there is a memory budget: Server.bg, stopped by
//     Shutdown.
//   - In a cluster, the announcement ticker, the ring watcher and the hand-overs of moving
//     teams: cluster.wg, stopped by Shutdown (cluster.stop).
//   - Loads, reloads and the janitor of the team set belong to cache.Teams; the index builds
//     to package index. Shutdown stops the team set last, once the sessions are gone.
//
// Locks of the fan-out, in order: hub.mu → session.mu → throttle.mu (written on each); a
// team's cache.Store lock is a leaf under them.
package edge
