// Package origin is the contract between weft and a system of record: what weft needs to talk
// to any origin that implements docs/origin.md, and nothing about how an origin works inside.
//
//   - types.go: the objects (User, Channel, Team, Membership: aliases of package protocol's,
//     which the client shares), the team info and the page shapes of the listings, and
//     Publisher, the hook an origin publishes its events through.
//   - event.go: Event, the team event in its gap-free sequence, with its wire shape, its
//     validation, and the NATS subject and de-duplication ID it travels under.
//   - client.go: Client, weft's HTTP client of the origin endpoints, safe for concurrent use.
//     decode.go and decode_fast.go turn response bodies into checked values: they are the only
//     place origin bytes become weft objects, so a misbehaving origin is refused there.
//   - list.go: the listings in every form (a page, a stream of pages, a partition), one
//     request each, pages handed on as they are decoded; stream.go reads a stream line by line.
//   - errors.go: Error and the kinds of failure (not found, unavailable, timeout, bad response,
//     rejected); IsFailure says which ones mean the origin is unhealthy.
//   - breaker.go: Breaker, the circuit breaker with adaptive throttling that the edge runs every
//     origin call through (the client's Guard).
//
// Versions and sequence numbers follow docs/origin.md: every object carries `updated`, which
// the origin raises on every change, and a team's events carry a gap-free sequence number (seq);
// a snapshot read after TeamInfo.Seq reflects at least every event up to it.
//
// The reference origin, a synthetic implementation of this contract that tests, demos, load
// tests and `weft origin` run, is package origin/reference. weft's serving packages (cache,
// edge, pubsub, index, proxy) import this package only; its own tests run the client against
// the reference origin from package origin_test, since origin/reference imports origin.
package origin
