package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/protocol"
)

// handleWS upgrades GET /ws and runs the session until the connection ends. Everything that
// can be refused is refused before the upgrade, with an HTTP status and a JSON error.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if e := protocol.CheckSubprotocol(r.Header); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if s.draining.Load() {
		w.Header().Set(protocol.HeaderRefused, "draining")
		writeError(w, http.StatusServiceUnavailable, &protocol.Error{Code: protocol.CodeOverloaded, Message: "draining",
			RetryAfterMS: s.jitter(s.cfg.DrainSpread).Milliseconds()})
		return
	}
	if s.admit.over(levelHigh) {
		// Refused before anything is spent on it, not even the token check.
		s.metrics.shed.WithLabelValues("connection").Inc()
		writeError(w, http.StatusServiceUnavailable, s.overloadedError("the node is over its memory budget"))
		return
	}
	if ok, after := s.connects.Admit(bucket.Now()); !ok {
		s.rateLimited(w, "node_connects", after)
		return
	}
	claims, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if ok, after := s.teamPacer(claims.Team).Admit(bucket.Now()); !ok {
		s.rateLimited(w, "team_connects", after)
		return
	}
	if s.cluster != nil {
		if owner, ok := s.cluster.owns(s, claims.Team, r); !ok {
			s.cluster.misrouted(w, r, owner)
			return
		}
	}
	since, hasSince := int64(0), false
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, errorf(protocol.CodeInvalidRequest, "since must be a non-negative integer"))
			return
		}
		since, hasSince = n, true
	}
	if !s.conns.add() {
		w.Header().Set(protocol.HeaderRefused, "draining")
		writeError(w, http.StatusServiceUnavailable, &protocol.Error{Code: protocol.CodeOverloaded, Message: "draining",
			RetryAfterMS: s.jitter(s.cfg.DrainSpread).Milliseconds()})
		return
	}
	acquiring := time.Now()
	team, err := s.teams.Acquire(r.Context(), claims.Team)
	s.metrics.startTeam.Observe(time.Since(acquiring).Seconds())
	if err != nil {
		s.conns.done()
		status, e := s.teamError(err)
		writeError(w, status, e)
		return
	}
	st := team.Store()
	if _, ok := st.User(claims.User); !ok {
		team.Release()
		s.conns.done()
		writeError(w, http.StatusUnauthorized, errorf(protocol.CodeInvalidAuth, "user %s is not in team %s", claims.User, claims.Team))
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:    []string{protocol.Subprotocol},
		CompressionMode: websocket.CompressionDisabled,
		// Tokens, not cookies, authenticate: a page of another origin gains nothing by
		// opening a socket, and the demo page may be served from anywhere.
		InsecureSkipVerify: true,
	})
	if err != nil {
		team.Release()
		s.conns.done()
		return // Accept has answered the client
	}
	conn.SetReadLimit(int64(16 * s.cfg.MaxFrameBytes))
	ctx, stop := context.WithCancel(context.Background())
	sess := &session{srv: s, id: newSessionID(), team: team, user: claims.User, conn: conn,
		ctx: ctx, stop: stop}
	sess.requests.Set(s.cfg.RequestRate, s.cfg.RequestBurst)
	sess.throttle.onPause = s.metrics.onPause
	sess.throttle.waiting = s.metrics.onThrottled
	sess.wtimer = time.AfterFunc(time.Hour, func() { stop(); conn.CloseNow() })
	sess.wtimer.Stop()
	h := s.hubFor(claims.Team, st)
	after, ok := h.register(sess)
	if !ok { // the hub of an earlier load of this team: take the current one
		s.hubs.CompareAndDelete(claims.Team, h)
		h = s.hubFor(claims.Team, st)
		after, _ = h.register(sess)
	}
	sess.hub = h
	s.sessions.Add(1)
	end := func() {
		h.unregister(sess)
		sess.seal()
		stop()
		conn.CloseNow() // unblocks a writer stuck on a client that stopped reading
		sess.wg.Wait()
		sess.wtimer.Stop()
		s.sessions.Add(-1)
		team.Release()
		s.conns.done()
	}
	if s.draining.Load() { // Shutdown began while this session was being set up
		sess.goodbye(protocol.ReasonDraining, websocket.StatusGoingAway, s.jitter(s.cfg.DrainSpread))
	} else if s.cluster != nil {
		// The ring may have given the team to another edge while the team loaded; a ring
		// change from here on finds this session registered and moves it.
		if _, ok := s.cluster.owns(s, claims.Team, r); !ok {
			s.cluster.moved.WithLabelValues("misrouted").Inc()
			sess.goodbye(protocol.ReasonMoved, protocol.CloseMoved, 0)
		}
	}

	start, resumed := after, false
	var first [][]byte
	if hasSince {
		replaying := time.Now()
		if frames, ok := s.replay(ctx, st, sess, since, after); ok {
			start, resumed, first = since, true, frames
		}
		s.metrics.startReplay.Observe(time.Since(replaying).Seconds())
		s.metrics.resumes.WithLabelValues(strconv.FormatBool(resumed)).Inc()
	}
	hello, _ := json.Marshal(protocol.Hello{Type: protocol.FrameHello, Protocol: protocol.Subprotocol, Session: sess.id, Team: claims.Team,
		User: claims.User, Node: s.cfg.Node, Seq: start, Resumed: resumed,
		HeartbeatMS: s.cfg.HeartbeatInterval.Milliseconds()})
	sess.goLive(append([][]byte{hello}, first...))
	s.metrics.startTotal.Observe(time.Since(arrived).Seconds())
	// The session reads on a goroutine of its own and this handler returns: the handler's stack
	// grew during the handshake and the load (16 KB, and Go never shrinks a running goroutine's
	// stack), and the request it holds is ~2.6 KB more. An idle connection then keeps only a
	// small reader stack. The tracker (conns) still counts the session until end.
	go func() {
		defer end()
		sess.readLoop()
	}()
}

// replay reads the events after since up to upto that user may see. ok is false when the
// stream no longer holds that range, the range is longer than MaxReplay, or since is ahead of
// this node: the client must boot again.
func (s *Server) replay(ctx context.Context, st *cache.Store, sess *session, since, upto int64) ([][]byte, bool) {
	team, user := sess.team.ID(), sess.user
	switch {
	case since > upto:
		s.log.Info("resume refused: the client is ahead of this node", "team", team, "user", user, "since", since, "node_seq", upto)
		return nil, false
	case since == upto:
		return nil, true
	case upto-since > int64(s.cfg.MaxReplay):
		s.log.Info("resume refused: too far back", "team", team, "user", user, "since", since, "node_seq", upto)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	evs, err := s.replayEvents(ctx, sess.hub, since, upto)
	if err != nil {
		s.log.Info("resume refused: the stream cannot replay", "team", team, "user", user, "since", since, "node_seq", upto, "err", err)
		return nil, false
	}
	var frames [][]byte
	for i, ok := range visibleRun(st, evs, user) {
		if ok {
			frames = append(frames, sess.replayFrame(newAnnotator(st, evs[i], eventFrame(evs[i]), s.cfg.Annotate)))
		}
	}
	return frames, true
}
