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
// receive them. Side by side: one embedded NATS server with the stream at one replica
// (embedded), and a cluster of three nats-server processes with three replicas (cluster3-R3).
// Each at full speed (max: the throughput) and paced at 1,000 events a second, below what
// either takes (the latency without queueing). Reported: events/s (published and delivered to
// every session), deliveries/s, and the latency from the origin's making each message (its
// ts) to a session's receipt, p50 and p99 over every delivery. Run it with, for example:
//
//	go test -run '^$' -bench EventsThroughCluster -benchtime 5000x ./internal/clustertest/
func BenchmarkEventsThroughCluster(b *testing.B) {
	for _, mode := range []struct {
		name     string
		embedded bool
	}{{"embedded", true}, {"cluster3-R3", false}} {
		// The system is built once per mode, here, and torn down when the mode's runs are
		// done: this function runs once, the sub-benchmarks as often as b.N needs.
		b.Run(mode.name, func(b *testing.B) {
			f := newFlow(b, mode.embedded)
			b.Run("max", func(b *testing.B) { f.run(b, 0) })
			b.Run("1000-per-s", func(b *testing.B) { f.run(b, 1000) })
		})
	}
}

// flow is the benchmark's system: its teams, their sessions, who posts where.
type flow struct {
	s        *system
	teams    []string
	sessions []*session
	posters  map[string][2]string // team → #general's ID, a member who posts
}

func newFlow(b *testing.B, embedded bool) *flow {
	const teams, perTeam = 4, 5
	f := &flow{s: newSystem(b, systemConfig{Embedded: embedded}), posters: map[string][2]string{}}
	f.teams = f.s.origin.TeamIDs()[:teams]
	for _, team := range f.teams {
		users := f.s.users(team, perTeam)
		for _, u := range users {
			f.sessions = append(f.sessions, f.s.dial(team, u))
		}
		for _, ch := range f.s.origin.Channels(team) {
			if ch.Name == "general" { // everyone's channel: every session gets its messages
				f.posters[team] = [2]string{ch.ID, users[0]}
			}
		}
	}
	return f
}

// run publishes b.N messages over the teams, at rate events a second in all (0: as fast as
// the origin's publishes are acknowledged), and waits until every session has them.
func (f *flow) run(b *testing.B, rate float64) {
	s := f.s
	for _, ss := range f.sessions {
		ss.mu.Lock()
		ss.lat = ss.lat[:0]
		ss.mu.Unlock()
	}
	target := map[string]int64{}
	for i, team := range f.teams {
		target[team] = s.origin.Seq(team) + int64(b.N/len(f.teams))
		if i < b.N%len(f.teams) {
			target[team]++
		}
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(f.teams))
	for _, team := range f.teams {
		wg.Go(func() {
			p := f.posters[team]
			var pace <-chan time.Time
			if rate > 0 {
				tick := time.NewTicker(time.Duration(float64(time.Second) * float64(len(f.teams)) / rate))
				defer tick.Stop()
				pace = tick.C
			}
			for s.origin.Seq(team) < target[team] {
				if pace != nil {
					<-pace
				}
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
	s.waitSeqs(f.sessions, target, time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	var lat []time.Duration
	for _, ss := range f.sessions {
		ss.mu.Lock()
		lat = append(lat, ss.lat...)
		ss.mu.Unlock()
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(quantile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
}
