// Package origin is weft's side of the system of record: the contract types (types.go,
// event.go), the HTTP client weft loads teams with, and a reference origin server that tests,
// demos and `weft origin` run.
//
// Where to start with the reference origin:
//
//   - world.go: NewWorld(seed, size) generates teams, users, channels and memberships on demand
//     from the seed, so a 366,000-user team (size "giant") costs kilobytes and starts in well
//     under a second. sizes.go has the named sizes, names.go the word lists, ids.go the IDs.
//   - server.go: NewServer(cfg) serves PROTOCOL.md section 7 (plus a one-body /snapshot) over
//     net/http. state.go is one team's current state (the world plus its changes since start),
//     pages.go and jsonenc.go write the listings, cursor.go their cursors.
//   - mutate.go: changes (PostMessage, JoinChannel, UpdateUser, …) that apply to the state and
//     publish team events in a gap-free sequence through a Publisher.
//   - activity.go: a rate-paced generator of realistic changes; faults.go: injected latency,
//     errors and outages.
//
// Versions: every base object and membership has updated = 1; the change published as seq s
// gives what it touches updated = s+1. A channel's member_count is derived from memberships:
// joins and leaves do not raise the channel's own version.
package origin
