package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/protocol"
	"github.com/weft-edge/weft/pubsub"
)

// outage is how long every NATS server is down: the 30 s, long past every timeout
// that could hide a dependency on NATS (the ring's 5 missed announcements, the bus's request
// timeout, a client's heartbeat). Here the elapsed time is the specification itself, so the
// test's clock measures it.
const outage = 30 * time.Second

// TestAllNATSServersDown stops all three NATS servers for 30 s. Throughout, calls through the
// proxy to warm teams succeed, every one of them, over /api and on the open sessions; calls
// for cold teams are refused with overloaded and a retry_after_ms; no session is disconnected.
// The origin changes the warm teams meanwhile: it cannot publish, keeps the events pending, and
// publishes them once NATS is back, and every session gets each of them once and in order.
func TestAllNATSServersDown(t *testing.T) {
	s := newSystem(t, systemConfig{})
	all := s.origin.TeamIDs()
	warm, cold := all[:2], all[2:6]
	var sessions []*session
	for _, team := range warm {
		for _, u := range s.users(team, 2) {
			sessions = append(sessions, s.dial(team, u))
		}
	}
	base := s.seqs(warm) // nothing pending yet: every change from here on is the traffic's
	tr := s.drive(warm, 50*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			tr.stop()
		}
	}()
	s.waitProgress(sessions, 5, recoverWithin)
	before := s.seqs(warm)

	s.nats.StopAll()
	t.Logf("all NATS servers stopped at seqs %v", before)
	var warmCalls, warmOK, sessionCalls, sessionOK, coldCalls, coldRefused atomic.Int64
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond) // a steady trickle of calls, not a load test
	for i := 0; time.Since(start) < outage; i++ {
		<-tick.C
		for _, team := range warm {
			warmCalls.Add(1)
			status, perr, err := s.apiCall(team, s.users(team, 1)[0], "users.info", map[string]any{"users": s.users(team, 1)})
			if err == nil && perr == nil {
				warmOK.Add(1)
			} else if warmCalls.Load()-warmOK.Load() <= 3 {
				t.Logf("%s after %v: warm team's call failed: HTTP %d %v %v", team, time.Since(start).Round(time.Millisecond), status, perr, err)
			}
		}
		ss := sessions[i%len(sessions)]
		sessionCalls.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := ss.c.UsersInfo(ctx, ss.user); err == nil {
			sessionOK.Add(1)
		} else if sessionCalls.Load()-sessionOK.Load() <= 3 {
			t.Logf("%s/%s after %v: call on the session failed: %v", ss.team, ss.user, time.Since(start).Round(time.Millisecond), err)
		}
		cancel()
		// Cold teams, by turns over /api and as a WebSocket handshake: no team loads now.
		team := cold[i%len(cold)]
		coldCalls.Add(1)
		u := s.users(team, 1)[0]
		var status int
		var perr *protocol.Error
		var err error
		if i%2 == 0 {
			status, perr, err = s.apiCall(team, u, "users.info", map[string]any{"users": []string{u}})
		} else {
			status, perr, err = s.wsRefusal(team, u)
		}
		if err == nil && status == http.StatusServiceUnavailable && perr != nil && perr.Code == protocol.CodeOverloaded && perr.RetryAfterMS > 0 {
			coldRefused.Add(1)
		} else if coldCalls.Load()-coldRefused.Load() <= 3 {
			t.Logf("%s after %v: cold team's call: HTTP %d %+v %v, want 503 overloaded with retry_after_ms", team,
				time.Since(start).Round(time.Millisecond), status, perr, err)
		}
	}
	tick.Stop()
	during := s.seqs(warm)
	t.Logf("after %v: warm /api %d/%d ok, session calls %d/%d ok, cold refused as overloaded %d/%d; origin applied %d changes, %d failed, seqs %v",
		time.Since(start).Round(time.Millisecond), warmOK.Load(), warmCalls.Load(), sessionOK.Load(), sessionCalls.Load(),
		coldRefused.Load(), coldCalls.Load(), tr.applied.Load(), tr.failed.Load(), during)

	s.nats.StartAll()
	s.nats.WaitReady(t)
	tr.stop()
	stopped = true
	s.nats.WaitStreamCurrent(t, s.nats.Conn(t), pubsub.StreamName, replicas)
	s.flush(recoverWithin)
	after := s.seqs(warm)
	for i := range warm {
		// The origin held at least one change of each team while NATS was away.
		if after[i] <= during[i] {
			t.Errorf("team %s: no event made during the outage was published after it (seq %d before, %d after)",
				warm[i], during[i], after[i])
		}
	}
	// The origin went on applying changes while NATS was away (an outbox): every one of them
	// was published once it came back.
	var published int64
	for i := range warm {
		published += after[i] - base[i]
	}
	if published != tr.applied.Load() {
		t.Errorf("the origin applied %d changes and published %d events", tr.applied.Load(), published)
	}
	s.waitCaughtUp(sessions, recoverWithin)
	for _, ss := range sessions {
		ss.check(t, s.origin.Seq(ss.team))
		if n := ss.reconnects.Load(); n != 0 {
			t.Errorf("%s/%s was disconnected (%d reconnects)", ss.team, ss.user, n)
		}
	}
	if warmOK.Load() != warmCalls.Load() {
		t.Errorf("warm teams: %d of %d calls through the proxy succeeded during the outage, want all", warmOK.Load(), warmCalls.Load())
	}
	if sessionOK.Load() != sessionCalls.Load() {
		t.Errorf("open sessions: %d of %d calls succeeded during the outage, want all", sessionOK.Load(), sessionCalls.Load())
	}
	if coldRefused.Load() != coldCalls.Load() {
		t.Errorf("cold teams: %d of %d calls refused with 503 overloaded and retry_after_ms during the outage, want all",
			coldRefused.Load(), coldCalls.Load())
	}
	// NATS is back: the cold teams load again (the client retries the refusals it may still
	// get while the edges catch up, as it does any 503).
	for _, team := range cold {
		s.dial(team, s.users(team, 1)[0])
	}
}

// wsRefusal asks the proxy for a WebSocket as (team, user) and returns the refusal: the HTTP
// status and the protocol error of the body (nil error and status 101 if it was accepted).
func (s *system) wsRefusal(team, user string) (int, *protocol.Error, error) {
	req, err := http.NewRequest(http.MethodGet, s.proxy.URL+"/ws", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token(team, user))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Protocol", protocol.Subprotocol)
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, nil, nil
	}
	var body protocol.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("decoding the refusal (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, body.Error, nil
}
