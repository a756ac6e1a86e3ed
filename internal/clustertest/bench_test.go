package clustertest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkEventsThroughCluster measures events from the origin to clients: the reference
// origin posts messages to #general of 4 teams (one publisher per team, each waiting for the
// stream's ack as the origin does), and 5 sessions per team, through the proxy and two edges,
// receive them. Side by side: one embedded NATS server with the stream at one replica, and a
// cluster of three nats-server processes with three replicas. Reported per run: events/s
// (published and delivered to every session), deliveries/s, and the latency from the
// origin's making each message (its ts) to a session's receipt, p50 and p99 over every
// delivery. Run it with, for example:
//
//	go test -run '^$' -bench EventsThroughCluster -benchtime 2000x ./internal/clustertest/
func BenchmarkEventsThroughCluster(b *testing.B) {
	const teams, perTeam = 4, 5
	for _, mode := range []struct {
		name     string
		embedded bool
	}{{"embedded", true}, {"cluster3-R3", false}} {
		// One system per mode, torn down before the next so that they do not share the CPU;
		// set up outside the sub-benchmark, which runs more than once (growing b.N).
		sc := &scope{TB: b}
		s := newSystem(sc, systemConfig{Embedded: mode.embedded})
		ids := s.origin.TeamIDs()[:teams]
		var sessions []*session
		posters := map[string][2]string{} // team → #general's ID, a poster
		for _, team := range ids {
			users := s.users(team, perTeam)
			for _, u := range users {
				sessions = append(sessions, s.dial(team, u))
			}
			for _, ch := range s.origin.Channels(team) {
				if ch.Name == "general" {
					posters[team] = [2]string{ch.ID, users[0]}
				}
			}
		}
		b.Run(mode.name, func(b *testing.B) {
			for _, ss := range sessions {
				ss.mu.Lock()
				ss.lat = ss.lat[:0]
				ss.mu.Unlock()
			}
			target := map[string]int64{}
			for i, team := range ids {
				target[team] = s.origin.Seq(team) + int64(b.N/teams)
				if i < b.N%teams {
					target[team]++
				}
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, teams)
			for _, team := range ids {
				wg.Go(func() {
					p := posters[team]
					for s.origin.Seq(team) < target[team] {
						if _, err := s.origin.PostMessage(context.Background(), team, p[0], p[1], "bench", nil); err != nil {
							errs <- fmt.Errorf("%s: %w", team, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			s.waitSeqs(sessions, target, time.Minute)
			elapsed := time.Since(start)
			b.StopTimer()
			var lat []time.Duration
			for _, ss := range sessions {
				ss.mu.Lock()
				lat = append(lat, ss.lat...)
				ss.mu.Unlock()
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(quantile(lat, 0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
		})
		sc.close()
	}
}

// scope is a test's TB whose cleanups run when close is called instead of at the test's end:
// a benchmark tears one system down before it builds the next.
type scope struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (s *scope) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// close runs the cleanups, last added first.
func (s *scope) close() {
	s.mu.Lock()
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
