// Package loadtest drives real clients against a running weft stack and reports what they
// measured. It knows weft only from the outside, the way a deployment's load generator would:
// the `weft` binary, the URLs `weft dev` prints, the endpoints and frames of PROTOCOL.md, the
// reference origin's admin endpoints, the edge's /metrics, and the child's /proc entries.
//
// Start with stack.go (build `weft`, run `weft dev` as a child process, read its memory and
// metrics) and client.go (dial sessions, drive events); capacity_bench_test.go holds the
// capacity figures of DESIGN.md's performance budgets, with the client load in this process:
//
//	go test ./loadtest -run '^$' -bench . -benchtime 1x -timeout 15m
package loadtest
