package edge

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/protocol"
)

// ended is weft_edge_sessions_ended_total{reason}.
func (h *harness) ended(r endReason) float64 {
	var m dto.Metric
	if err := h.edge.metrics.sessionsEnded.WithLabelValues(r.String()).Write(&m); err != nil {
		h.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// waitEnded waits until n sessions ended for r.
func (h *harness) waitEnded(r endReason, n float64) {
	h.t.Helper()
	testkit.EventuallyOr(h.t, testkit.Within, func() bool { return h.ended(r) >= n }, "sessions ended for "+r.String(), func() { h.t.Logf("ended: %v", h.endedAll()) })
}

func (h *harness) endedAll() map[string]float64 {
	out := map[string]float64{}
	for r := range numEndReasons {
		if v := h.ended(r); v != 0 {
			out[r.String()] = v
		}
	}
	return out
}

// checkEnded fails unless the sessions ended so far are exactly want: one reason per session.
func (h *harness) checkEnded(want map[endReason]float64) {
	h.t.Helper()
	for r := range numEndReasons {
		if got := h.ended(r); got != want[r] {
			h.t.Errorf("sessions ended for %s: %v, want %v (all: %v)", r, got, want[r], h.endedAll())
		}
	}
}

// TestSessionEndReasons drives sessions into each way a session can end on a standalone node
// and checks that each is counted once, under its reason.
func TestSessionEndReasons(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) {
		c.QueueBytes = 16 << 10
		c.MaxFrameBytes = 1 << 10 // frames past 16 KiB end the connection
		c.PolicyStrikes = 4
	}})
	ctx := context.Background()
	team := h.team
	want := map[endReason]float64{}

	{ // client_closed
		c := h.dial(team, h.user(team, 1), "")
		c.conn.Close(websocket.StatusNormalClosure, "bye")
		want[endClientClosed]++
		h.waitEnded(endClientClosed, want[endClientClosed])
	}

	{ // read_error
		c := h.dial(team, h.user(team, 1), "")
		c.conn.CloseNow() // no close frame: the edge's read fails
		want[endReadError]++
		h.waitEnded(endReadError, want[endReadError])
	}

	{ // too_large
		c := h.dial(team, h.user(team, 1), "")
		c.sendType(websocket.MessageText, make([]byte, 20<<10))
		want[endTooLarge]++
		h.waitEnded(endTooLarge, want[endTooLarge])
		testkit.Eventually(t, func() bool { done, _ := c.ended(); return done }, "the connection to end")
		if _, err := c.ended(); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
			t.Errorf("ended with %v, want close 1009", err)
		}
	}

	{ // policy
		c := h.dial(team, h.user(team, 1), "")
		for range 4 {
			c.send([]byte("garbage"))
		}
		bye := c.waitFrame("goodbye", func(f frame) bool { return f.Type == "goodbye" })
		if bye.Reason != protocol.ReasonPolicy {
			t.Errorf("goodbye %s, want policy", bye.raw)
		}
		want[endPolicy]++
		h.waitEnded(endPolicy, want[endPolicy])
	}

	{ // slow_consumer
		user := h.user(team, 1)
		flood := h.must(h.origin.CreateChannel(ctx, team, "flood", user, true)).Channel.ID
		s := newStallServer(t, h)
		conn := s.dial(h.token(team, user))
		s.hold.Store(true) // the client stops reading: the edge's writes to it block
		sess := h.sessionOf(team, user)
		text := strings.Repeat("flood ", 4<<10/6)
		for i := 0; sess.endReason() == endUnknown; i++ {
			if i == 100 {
				t.Fatal("the session that does not read was never closed")
			}
			ev := h.must(h.origin.PostMessage(ctx, team, flood, user, text, nil))
			h.applied(team, ev.Seq) // fanned out to the session
		}
		if r := sess.endReason(); r != endSlowConsumer {
			t.Fatalf("the session ended for %s, want slow_consumer", r)
		}
		s.releaseHold() // the client reads again: the goodbye gets through
		bye, err := readUntilEnd(conn)
		if bye.Reason != protocol.ReasonSlowConsumer || websocket.CloseStatus(err) != protocol.CloseSlowConsumer {
			t.Errorf("ended with goodbye %+v and %v, want slow_consumer and close %d", bye, err, protocol.CloseSlowConsumer)
		}
		want[endSlowConsumer]++
		h.waitEnded(endSlowConsumer, want[endSlowConsumer])
	}

	{ // reload: the team lost events; its sessions are told goodbye draining, counted apart
		c := h.dial(team, h.user(team, 1), "")
		h.edge.onReload(h.edge.Teams().Lookup(team))
		if bye := c.waitFrame("goodbye", func(f frame) bool { return f.Type == "goodbye" }); bye.Reason != protocol.ReasonDraining {
			t.Errorf("goodbye %s, want draining", bye.raw)
		}
		want[endReload]++
		h.waitEnded(endReload, want[endReload])
	}

	{ // moved (a ring change on a node of a cluster; here told directly)
		c := h.dial(team, h.user(team, 1), "")
		h.sessionOf(team, c.user).goodbye(endMoved, 0)
		bye := c.waitFrame("goodbye", func(f frame) bool { return f.Type == "goodbye" })
		testkit.Eventually(t, func() bool { done, _ := c.ended(); return done }, "the connection to end")
		if _, err := c.ended(); bye.Reason != protocol.ReasonMoved || websocket.CloseStatus(err) != protocol.CloseMoved {
			t.Errorf("goodbye %s, ended with %v; want moved and close %d", bye.raw, err, protocol.CloseMoved)
		}
		want[endMoved]++
		h.waitEnded(endMoved, want[endMoved])
	}

	{ // draining
		c := h.dial(team, h.user(team, 1), "")
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := h.edge.Shutdown(sctx); err != nil {
			t.Fatal(err)
		}
		bye := c.waitFrame("goodbye", func(f frame) bool { return f.Type == "goodbye" })
		if bye.Reason != protocol.ReasonDraining {
			t.Errorf("goodbye %s, want draining", bye.raw)
		}
		want[endDraining]++
		h.waitEnded(endDraining, want[endDraining]) // Shutdown waited for it: already counted
	}

	h.checkEnded(want)
}

// TestSessionEndsIdle: a client silent for IdleTimeout is cut off, counted as idle.
func TestSessionEndsIdle(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.IdleTimeout = 300 * time.Millisecond }})
	c := h.dial(h.team, h.user(h.team, 1), "")
	testkit.Eventually(t, func() bool { done, _ := c.ended(); return done }, "the silent connection to end")
	h.waitEnded(endIdle, 1)
	h.checkEnded(map[endReason]float64{endIdle: 1})
}

// TestSessionEndsOnWriteTimeout: a write that outlives WriteTimeout (a client that stopped
// reading, its socket buffers full) ends the session, counted as write_timeout.
func TestSessionEndsOnWriteTimeout(t *testing.T) {
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.WriteTimeout = 200 * time.Millisecond }})
	s := newStallServer(t, h)
	user := h.user(h.team, 1)
	conn := s.dial(h.token(h.team, user))
	s.hold.Store(true)
	// A bad frame's error reply is the write that blocks.
	if err := conn.Write(context.Background(), websocket.MessageText, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	h.waitEnded(endWriteTimeout, 1)
	h.checkEnded(map[endReason]float64{endWriteTimeout: 1})
}

// sessionOf returns the one session of user in team.
func (h *harness) sessionOf(team, user string) *session {
	h.t.Helper()
	hb, ok := h.edge.hubs.Load(team)
	if !ok {
		h.t.Fatalf("no hub for %s", team)
	}
	for _, ss := range hb.(*hub).snapshot() {
		if ss.user == user {
			return ss
		}
	}
	h.t.Fatalf("no session of %s in %s", user, team)
	return nil
}

// readUntilEnd reads frames until the connection ends and returns the last goodbye, if any,
// and the error that ended it.
func readUntilEnd(conn *websocket.Conn) (protocol.Goodbye, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Within)
	defer cancel()
	var bye protocol.Goodbye
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return bye, err
		}
		var g protocol.Goodbye
		if json.Unmarshal(b, &g) == nil && g.Type == "goodbye" {
			bye = g
		}
	}
}

// stallServer serves the harness's edge on a listener whose connections' writes can be held:
// the edge's writes to a client that stopped reading block once the socket buffers fill, and
// holding them makes that happen at once instead of after megabytes.
type stallServer struct {
	t       *testing.T
	h       *harness
	srv     *httptest.Server
	hold    atomic.Bool   // writes from now on block until released or the connection closes
	release chan struct{} // closed: held writes go on
	once    sync.Once
}

func newStallServer(t *testing.T, h *harness) *stallServer {
	s := &stallServer{t: t, h: h, release: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(h.edge)
	s.srv.Listener = &stallListener{Listener: s.srv.Listener, s: s}
	s.srv.Start()
	t.Cleanup(func() {
		s.releaseHold()
		s.srv.Close()
	})
	return s
}

func (s *stallServer) releaseHold() { s.once.Do(func() { close(s.release) }) }

// dial connects with tok and reads the hello; the connection is closed at cleanup.
func (s *stallServer) dial(tok string) *websocket.Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Within)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.srv.URL, "http")+"/ws", &websocket.DialOptions{
		HTTPClient: s.h.client, HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}, Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.CloseNow() })
	if _, b, err := conn.Read(ctx); err != nil || !strings.Contains(string(b), `"type":"hello"`) {
		s.t.Fatalf("hello: %s, %v", b, err)
	}
	return conn
}

type stallListener struct {
	net.Listener
	s *stallServer
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, s: l.s, closed: make(chan struct{})}, nil
}

// stallConn is a connection whose writes hang while the server holds them, as a real one's do
// when the client stops reading: until released, closed, or past the write deadline.
type stallConn struct {
	net.Conn
	s        *stallServer
	closed   chan struct{}
	once     sync.Once
	deadline atomic.Pointer[time.Time]
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.deadline.Store(&t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.deadline.Store(&t)
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) Write(p []byte) (int, error) {
	if c.s.hold.Load() {
		var expired <-chan time.Time
		if d := c.deadline.Load(); d != nil && !d.IsZero() {
			t := time.NewTimer(time.Until(*d))
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		case <-c.s.release:
		}
	}
	return c.Conn.Write(p)
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
