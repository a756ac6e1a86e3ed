package regiontest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/wan"
	"github.com/weft-edge/weft/origin/reference"
)

// waitLive changes team at the origin until a live message of it has crossed every region's
// link: each region's leaf node passes its edges' interest in the team's subject to the hub a
// moment (a one-way trip) after the edges subscribed, and until then the team's events reach
// the region only through its mirror (the edges fill them from it).
func (s *system) waitLive(team string) {
	s.t.Helper()
	i := 0
	testkit.EventuallyWithin(s.t, 30*time.Second, func() bool {
		i++
		if i%10 == 1 { // a change every 10 polls: the poll is quicker than the WAN
			// A publish that timed out (the first ones to a new R3 stream, under -race) leaves
			// its event queued at the origin, published with the next change: not a failure.
			if err := s.change(context.Background(), team, i); err != nil && !errors.Is(err, reference.ErrPending) {
				s.t.Fatal(err)
			}
		}
		for _, r := range s.regions {
			if _, live := r.wire.crossings(team); len(live) == 0 {
				return false
			}
		}
		return true
	}, "a live event of "+team+" across every region's link")
}

// TestTeamWarmInTwoRegions: a team with sessions in two regions (two edges in region a, one
// in region b) gets every event in both, exactly once and in order; each event crossed each
// region's link twice, whatever the number of edges there: once live (core NATS interest,
// which the leaf node holds once for all its edges) and once for the region's mirror. A team
// that nobody follows in a region crosses its link only for the mirror.
func TestTeamWarmInTwoRegions(t *testing.T) {
	s := newSystem(t, regionSpec{"a", rttA, 2}, regionSpec{"b", rttB, 1})
	a, b := s.regions[0], s.regions[1]
	teams := s.origin.TeamIDs()
	team, quiet := teams[0], teams[1]
	users := s.users(team, 3)
	sessions := []*session{s.dial(a, 0, team, users[0]), s.dial(a, 1, team, users[1]), s.dial(b, 0, team, users[2])}
	s.waitLive(team)
	s.waitCaughtUp(sessions, 30*time.Second)

	const n = 200
	from, quietFrom := s.origin.Seq(team), s.origin.Seq(quiet)
	s.changes(team, n)
	s.changes(quiet, n)
	to, quietTo := from+n, quietFrom+n
	s.waitSeqs(sessions, map[string]int64{team: to}, time.Minute)
	for _, ss := range sessions {
		ss.check(t, to)
	}

	for _, r := range s.regions {
		// The mirror's copies may trail the live ones by a moment.
		testkit.EventuallyWithin(t, 30*time.Second, func() bool {
			all, _ := r.wire.crossings(team)
			qall, _ := r.wire.crossings(quiet)
			return all[to] >= 2 && qall[quietTo] >= 1
		}, "the mirror's copies of the last events down region "+r.name+"'s link")
		all, live := r.wire.crossings(team)
		qall, qlive := r.wire.crossings(quiet)
		var bad []string
		for seq := from + 1; seq <= to && len(bad) < 5; seq++ {
			if live[seq] != 1 || all[seq] != 2 {
				bad = append(bad, fmt.Sprintf("%s seq %d: %d live, %d in all", team, seq, live[seq], all[seq]))
			}
		}
		for seq := quietFrom + 1; seq <= quietTo && len(bad) < 10; seq++ {
			if qlive[seq] != 0 || qall[seq] != 1 {
				bad = append(bad, fmt.Sprintf("%s seq %d: %d live, %d in all", quiet, seq, qlive[seq], qall[seq]))
			}
		}
		if len(bad) > 0 {
			t.Errorf("region %s: events crossed the link other than once live (with a subscriber) and once for the mirror: %v", r.name, bad)
		}
		st := r.link.Stats()
		testkit.Equal(t, st.Open, int64(1), "connections over region "+r.name+"'s link (its leaf node's)")
		t.Logf("region %s (RTT %v, %d edges): link carried %d B (%d B decompressed) in %d chunks down, %d B in %d chunks up since start",
			r.name, r.link.RTT(), len(r.edges), st.Down.Bytes, r.wire.plainBytes(), st.Down.Chunks, st.Up.Bytes, st.Up.Chunks)
	}
	for _, ss := range sessions {
		d := s.latencies(ss, from, to)
		testkit.True(t, len(d) == n, "%s: %d latencies, want %d", ss, len(d), n)
		t.Logf("%s: origin change to client, p50 %v, p99 %v, max %v (link RTT %v)", ss,
			d[len(d)/2].Round(time.Millisecond), d[len(d)*99/100].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), ss.region.link.RTT())
	}
}

// partition is how long region b's link is cut: the 20 s, past the leaf node's
// reconnects (every second), the mirror's stall detection and the edges' gap checks (5 s).
// The elapsed time is the specification itself, so the test's clock measures it.
const partition = 20 * time.Second

// TestRegionPartition: region b's link is cut for 20 s (Drop: the leaf node's connection is
// reset and every reconnect refused) while the origin changes a team warm in both regions.
// Region a keeps up throughout; region b's edges keep serving their sessions (calls on them
// succeed) from their stores; after the link heals, the leaf node reconnects, live events
// flow again and region b's edges fill what they missed from the hub's stream (their fallback:
// the region's mirror resumes only tens of seconds later); every session in both regions gets
// each event once and in order, and none reconnects.
func TestRegionPartition(t *testing.T) {
	s := newSystem(t, regionSpec{"a", rttA, 1}, regionSpec{"b", rttB, 2})
	a, b := s.regions[0], s.regions[1]
	team := s.origin.TeamIDs()[0]
	users := s.users(team, 3)
	inA := []*session{s.dial(a, 0, team, users[0])}
	inB := []*session{s.dial(b, 0, team, users[1]), s.dial(b, 1, team, users[2])}
	all := append(append([]*session{}, inA...), inB...)
	s.waitLive(team)
	s.waitCaughtUp(all, 30*time.Second)

	tr := s.drive([]string{team}, 50*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			tr.stop(t)
		}
	}()
	s.waitSeqs(all, map[string]int64{team: s.origin.Seq(team) + 5}, 30*time.Second)

	// Every edge hears the hub's heartbeat before the cut: its silence is what tells them.
	testkit.EventuallyOr(t, 20*time.Second, func() bool {
		for _, r := range s.regions {
			for _, bus := range r.buses {
				if time.Since(bus.LastHubBeat()) > 3*time.Second {
					return false
				}
			}
		}
		return true
	}, "every edge hearing the hub's heartbeat", func() {
		for _, r := range s.regions {
			for i, bus := range r.buses {
				t.Logf("region %s edge %d: last beat %v ago, received %d events", r.name, i, time.Since(bus.LastHubBeat()), bus.Stats().Received)
			}
		}
	})
	b.link.Cut(wan.Drop)
	cutAt := s.origin.Seq(team)
	t.Logf("region b's link cut at seq %d", cutAt)
	var calls, ok int
	start := time.Now()
	tick := time.NewTicker(250 * time.Millisecond) // a steady trickle of calls, not a load test
	for i := 0; time.Since(start) < partition; i++ {
		<-tick.C
		ss := inB[i%len(inB)]
		calls++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := ss.c.UsersInfo(ctx, ss.user); err == nil {
			ok++
		} else if calls-ok <= 3 {
			t.Logf("%s after %v: call failed: %v", ss, time.Since(start).Round(time.Millisecond), err)
		}
		cancel()
	}
	tick.Stop()
	endAt := s.origin.Seq(team)
	testkit.Equal(t, ok, calls, "calls on region b's sessions that succeeded during the partition")
	// Its edges knew they were cut off (the hub's heartbeat stopped; their own NATS connection
	// to the leaf node never dropped) and flagged the team as following no feed.
	for i, bus := range b.buses {
		testkit.True(t, bus.HubSilent() && bus.FeedStatus().WithoutFeed > 0,
			"region b's edge %d during the partition: hub silent %v (last beat %v ago), feed %+v",
			i, bus.HubSilent(), time.Since(bus.LastHubBeat()), bus.FeedStatus())
	}
	// Region a kept up: it has (or gets within the usual delay) what was published meanwhile.
	s.waitSeqs(inA, map[string]int64{team: endAt}, 10*time.Second)
	for _, ss := range inB {
		testkit.True(t, ss.last() < endAt, "%s at seq %d: events crossed a cut link (published up to %d)", ss, ss.last(), endAt)
	}
	refused := b.link.Stats().Refused
	testkit.True(t, refused > 0, "the leaf node never tried to reconnect through the cut link")
	t.Logf("partition: %d events published (seqs %d..%d); region b at %d and %d; the leaf node's %d reconnects refused",
		endAt-cutAt, cutAt+1, endAt, inB[0].last(), inB[1].last(), refused)

	b.link.Heal()
	healed := time.Now()
	b.waitLeafConnected(t)
	target := s.origin.Seq(team)
	s.waitSeqs(all, map[string]int64{team: target}, time.Minute)
	t.Logf("region b caught up to seq %d %v after the heal", target, time.Since(healed).Round(time.Millisecond))
	testkit.Eventually(t, func() bool {
		for _, bus := range b.buses {
			if bus.HubSilent() || bus.FeedStatus().WithoutFeed > 0 {
				return false
			}
		}
		return true
	}, "region b's edges following their feeds again")

	tr.stop(t)
	stopped = true
	testkit.Equal(t, tr.failed.Load(), int64(0), "changes the origin failed to publish")
	s.waitCaughtUp(all, 30*time.Second)
	final := s.origin.Seq(team)
	for _, ss := range all {
		ss.check(t, final)
	}
	// The mirror resumes on its own, later, when nats-server retries its consumer (a create
	// request sent while the link was down is waited for up to 30 s, then retried with a
	// backoff of up to 2 min): 40 s after the heal in some runs, more than 3 min in others.
	// The edges did not wait for it (their fallback); its state is logged, not asserted.
	b.logMirror(t)
	for i, bus := range b.buses {
		st := bus.Stats()
		testkit.True(t, st.Filled > 0, "edge b%d filled nothing from the region's stream", i+1)
		testkit.Equal(t, st.Lost, uint64(0), fmt.Sprintf("subscriptions lost on edge b%d", i+1))
		t.Logf("edge b%d: %d events filled in %d gaps, %d reads of the hub's stream (the fallback) while the mirror lagged", i+1, st.Filled, st.GapsFilled, st.FallbackReads)
	}
}
