// Package testkit is what every weft test shares: a bounded poll (Eventually) so that no test
// sleeps and hopes, and the leak check's options so that every package ignores the same
// goroutines and no more. It depends on the standard library and goleak only, so that any
// package's tests, internal ones included, can use it; the in-process NATS and origin are in
// testkit/backend. Tests only: no non-test code imports it.
package testkit

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// T is what the kit needs of a test: a *testing.T or *testing.B, or a stand-in that runs a
// fixture outside a test (an Example).
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// Within is how long Eventually waits: long enough for a condition on a 2-core machine that is
// busy with other work and the race detector, short enough that a stuck test says so.
const Within = 10 * time.Second

// pollEvery is how often a condition is tried again.
const pollEvery = 5 * time.Millisecond

// Eventually polls cond until it holds, failing t with what after Within.
func Eventually(t T, cond func() bool, what string) {
	t.Helper()
	EventuallyOr(t, Within, cond, what, nil)
}

// EventuallyWithin is Eventually with a bound of its own, for conditions that take longer.
func EventuallyWithin(t T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	EventuallyOr(t, within, cond, what, nil)
}

// EventuallyOr is EventuallyWithin that calls diag, when not nil, before failing: a test can
// log what it can see of a condition that never came.
func EventuallyOr(t T, within time.Duration, cond func() bool, what string, diag func()) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			if cond() { // it came while the last tick waited
				return
			}
			if diag != nil {
				diag()
			}
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

// LeakOptions are the goroutines the leak check ignores in every package, and nothing that a
// leaked session, tunnel or subscription would leave (such a goroutine sits in
// internal/poll.runtime_pollWait, reading a socket: it is never ignored).
func LeakOptions(extra ...goleak.Option) []goleak.Option {
	return append([]goleak.Option{
		// net/http keeps idle keep-alive connections' reader and writer until the transport
		// closes them: a client's, not weft's.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		// bleve's analysis workers: started once per process by the package, never stopped.
		goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"),
	}, extra...)
}

// VerifyTestMain runs a package's tests and then fails them if goroutines are left behind.
func VerifyTestMain(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, LeakOptions(extra...)...)
}
