// Package reference is the reference origin: a deterministic synthetic world served over the
// origin contract (docs/origin.md, types in package origin), with live events, injected faults
// and an admin API. Tests, demos, load tests and `weft origin` run it; weft's serving packages
// never import it.
//
// Where to start reading:
//
//   - world.go: NewWorld(seed, size) generates teams, users, channels and memberships on demand
//     from the seed, so a 366,000-user team (size "giant") costs kilobytes and starts in well
//     under a second. sizes.go has the named sizes, names.go the word lists, prng.go the
//     per-object random streams, ids.go the Slack-like IDs.
//   - server.go: NewServer(cfg) serves the origin endpoints (plus a one-body /snapshot) over
//     net/http. state.go is one team's current state (the world plus its changes since start),
//     pages.go and jsonenc.go write the listings, cursor.go their cursors; access.go reads the
//     same state from Go, without HTTP.
//   - mutate.go: changes (PostMessage, JoinChannel, UpdateUser, …) that apply to the state and
//     publish team events in a gap-free sequence through an origin.Publisher.
//   - activity.go: a rate-paced generator of realistic changes; faults.go: injected latency,
//     errors and outages; admin.go: the endpoint that publishes events on demand.
//
// Versions: every base object and membership has updated = 1; the change published as seq s
// gives what it touches updated = s+1. A channel's member_count is derived from memberships:
// joins and leaves do not raise the channel's own version.
package reference
