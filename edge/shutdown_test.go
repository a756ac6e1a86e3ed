package edge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/protocol"
)

// TestShutdownDrains: Shutdown tells every session goodbye draining with a reconnect hint and
// closes it with 1001; meanwhile and after, the node is not ready and refuses new work.
func TestShutdownDrains(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var clients []*wsClient
	for i := range 5 {
		clients = append(clients, h.dial(h.team, h.user(h.team, i), ""))
	}
	clients = append(clients, h.dial(h.other, h.user(h.other, 1), ""))
	if status, _ := h.get("/readyz"); status != http.StatusOK {
		t.Fatalf("readyz before shutdown: %d", status)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- h.edge.Shutdown(ctx)
	}()
	testkit.Eventually(t, func() bool {
		status, _ := h.get("/readyz")
		return status == http.StatusServiceUnavailable
	}, "readyz to turn 503")
	for _, c := range clients {
		testkit.Eventually(t, func() bool { done, _ := c.ended(); return done }, "the connection to end")
		_, err := c.ended()
		frames := c.all()
		if len(frames) == 0 {
			t.Errorf("%s: no goodbye", c.user)
			continue
		}
		last := frames[len(frames)-1]
		if last.Type != "goodbye" || last.Reason != protocol.ReasonDraining || last.ReconnectAfterMS <= 0 {
			t.Errorf("%s: last frame %s, want goodbye draining with reconnect_after_ms", c.user, last.raw)
		}
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("%s: ended with %v, want close 1001", c.user, err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if h.edge.Sessions() != 0 {
		t.Errorf("%d sessions after Shutdown", h.edge.Sessions())
	}

	// A drained node refuses new work and says so, but stays alive.
	_, resp, err := h.dialRaw(h.token(h.team, h.user(h.team, 1)), "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ws after Shutdown: %v %v", err, resp)
	} else {
		var b struct{ Error *protocol.Error }
		body, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(body, &b) != nil || b.Error == nil || b.Error.Code != protocol.CodeOverloaded || b.Error.RetryAfterMS <= 0 {
			t.Errorf("/ws after Shutdown: body %s", body)
		}
	}
	if status, body := h.api(h.token(h.team, h.user(h.team, 1)), "ping", nil); status != http.StatusServiceUnavailable {
		t.Errorf("/api after Shutdown: %d %v", status, body)
	}
	if status, _ := h.get("/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("readyz after Shutdown: %d", status)
	}
	if status, _ := h.get("/healthz"); status != http.StatusOK {
		t.Errorf("healthz after Shutdown: %d", status)
	}
	if v := h.metric(`weft_edge_goodbyes_total{reason="draining"}`); v != float64(len(clients)) {
		t.Errorf("draining goodbyes = %v, want %d", v, len(clients))
	}
}

// A connection silent for IdleTimeout is closed, and one that keeps talking is not.
//
// The talker pings every IdleTimeout/20 with no request quota: pinging as fast as replies come
// ran into the default quota (200 burst, 100/s) in about 2 of 30 runs, and a quota reply is not
// a pong. IdleTimeout is 1s, not less, so that a talker whose goroutine waits a while for a CPU
// still pings well inside it.
func TestIdleConnectionsClose(t *testing.T) {
	const idle = time.Second
	h := newHarness(t, harnessOpts{edge: func(c *Config) {
		c.IdleTimeout = idle
		c.RequestRate = -1
	}})
	team := h.origin.TeamIDs()[0]
	silent := h.dial(team, h.user(team, 1), "")
	talker := h.dial(team, h.user(team, 2), "")
	tick := time.NewTicker(idle / 20)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pong struct{}
		talker.call("ping", nil, &pong)
		if ended, _ := silent.ended(); ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a silent connection was not closed after IdleTimeout")
		}
		<-tick.C
	}
	if ended, err := talker.ended(); ended {
		t.Fatalf("a connection that pings was closed: %v", err)
	}
}
