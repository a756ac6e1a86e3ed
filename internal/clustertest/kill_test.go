package clustertest_test

import (
	"testing"
	"time"

	"github.com/weft-edge/weft/pubsub"
)

// recoverWithin bounds what follows the loss of one NATS server: the clients of its
// connections reconnect to another (0.5–1s), the stream elects a new leader when the lost
// server led it (a few seconds), the origin's pending events go out with its next change, and
// the edges fill what their subscriptions missed from the stream.
const recoverWithin = 45 * time.Second

// TestKillEachNATSServer kills (SIGKILL) each of the three NATS servers in turn under live
// traffic, bringing it back, and waiting until its replica of the stream is current again,
// before the next: every client through the proxy is handed every event of its team exactly
// once and in order, and none of them is disconnected (the edges and the proxy only lose a
// NATS connection, which reconnects to another server).
func TestKillEachNATSServer(t *testing.T) {
	s := newSystem(t, systemConfig{})
	teams := s.origin.TeamIDs()[:3]
	var sessions []*session
	for _, team := range teams {
		for _, u := range s.users(team, 2) {
			sessions = append(sessions, s.dial(team, u))
		}
	}
	tr := s.drive(teams, 30*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			tr.stop()
		}
	}()
	s.waitProgress(sessions, 5, recoverWithin)

	nc := s.nats.Conn(t)
	for i := range s.nats.N() {
		s.nats.Kill(i)
		t.Logf("killed %s at seqs %v", s.nats.Name(i), s.seqs(teams))
		// Events still flow with the server gone: published after its death, handed to every
		// session.
		s.waitProgress(sessions, 10, recoverWithin)
		s.nats.Start(i)
		s.nats.WaitReady(t)
		s.nats.WaitStreamCurrent(t, nc, pubsub.StreamName, replicas)
		s.waitProgress(sessions, 5, recoverWithin)
	}
	tr.stop()
	stopped = true
	s.flush(recoverWithin)
	s.waitCaughtUp(sessions, recoverWithin)
	t.Logf("origin applied %d changes (%d publishes failed and were retried); last seqs %v",
		tr.applied.Load(), tr.failed.Load(), s.seqs(teams))
	// Every server died once, so every process's connection was cut and came back.
	for name, b := range s.buses {
		st := b.Stats()
		t.Logf("%s: %d reconnects, %d gaps, %d events filled from the stream", name, st.Reconnects, st.Gaps, st.Filled)
		if st.Reconnects == 0 {
			t.Errorf("%s never reconnected: the test did not cut its connection", name)
		}
	}
	for _, ss := range sessions {
		ss.check(t, s.origin.Seq(ss.team))
		if n := ss.reconnects.Load(); n != 0 {
			t.Errorf("%s/%s reconnected %d times", ss.team, ss.user, n)
		}
	}
}

// seqs is the origin's published seq of each team.
func (s *system) seqs(teams []string) []int64 {
	out := make([]int64, len(teams))
	for i, team := range teams {
		out[i] = s.origin.Seq(team)
	}
	return out
}
