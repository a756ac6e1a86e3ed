// Package loadtest drives real clients against a running weft stack and reports what they
// measured. It knows weft only from the outside, the way a deployment's load generator would:
// the `weft` binary, the URLs `weft dev` prints, the endpoints and frames of docs/protocol.md, the
// reference origin's admin endpoints, the edge's /metrics, and the child's /proc entries.
//
// Start with stack.go (build `weft`, run `weft dev` as a child process, read its memory and
// metrics) and client.go (dial raw sessions, read the origin's listings, drive events).
//
// The scenarios of the weft-loadtest command (cmd/weft-loadtest) each have a file: boot.go,
// query.go, typing.go, fanout.go, capacity.go (clients in worker processes, weft-loadtest
// re-executed: stormworker.go), storm.go and bigteam.go (weft beside a server on the
// centrifuge library, centrifuge.go, loaded by cheap clients in worker processes, cheap.go and
// cheapworker.go), and fronts.go (weft's proxy beside nginx over standalone edges, nginx.go,
// and beside a plain Go TCP relay, relay.go; a Cluster's Front). They run against a Target (target.go: a stack
// given by URL, or one spawned), time with an HDR histogram (hist.go), pace open-loop load
// (pace.go), and end in a Report (report.go: table, JSON, PNG plots); results.go turns a full
// run into RESULTS.md. The reports themselves live outside this package, in the repository's
// results/ folder (results/RESULTS.md).
// annotations.go is a scenario of real clients (package client) rendering a message stream,
// measured against the edge's annotation modes. capacity_bench_test.go holds the capacity
// figures of docs/architecture.md's performance budgets; it dials raw WebSockets, not the client package,
// because it compares the edge with a bare coder/websocket server that speaks no protocol:
//
//	go test ./loadtest -run '^$' -bench . -benchtime 1x -timeout 15m
package loadtest
