package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
)

// handleWS upgrades GET /ws and runs the session until the connection ends. Everything that
// can be refused is refused before the upgrade, with an HTTP status and a JSON error (admitWS);
// what passes is upgraded and started (startSession).
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	a, ok := s.admitWS(w, r)
	if !ok {
		return
	}
	s.startSession(w, r, a)
}

// admittedWS is a WebSocket request that passed admission. It holds a slot in conns and a
// reference to team: whoever holds it releases both (release), or hands them to a session,
// which releases them when it ends.
type admittedWS struct {
	arrived time.Time
	claims  token.Claims
	since   int64 // the resume point, when resume
	resume  bool
	team    *cache.Team
	route   routing // what the proxy said of the request (none without a cluster)
}

func (a *admittedWS) release(s *Server) {
	a.team.Release()
	s.conns.done()
}

// admitWS decides whether a WebSocket request may start a session; when not, it has answered
// it. The checks run cheapest first, so that a node refusing a herd spends little on each:
// the subprotocol, draining, memory, the node's connection rate, the token, the team's connection rate,
// ownership in the ring, the request's own parameters, then the team (loaded if needed) and the
// user's place in it.
func (s *Server) admitWS(w http.ResponseWriter, r *http.Request) (*admittedWS, bool) {
	a := &admittedWS{arrived: time.Now()}
	if e := protocol.CheckSubprotocol(r.Header); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return nil, false
	}
	if s.draining.Load() {
		s.refuseDraining(w)
		return nil, false
	}
	if s.admit.over(levelHigh) {
		// Refused before anything is spent on it, not even the token check.
		s.metrics.shed.WithLabelValues("connection").Inc()
		writeError(w, http.StatusServiceUnavailable, s.overloadedError("the node is over its memory budget"))
		return nil, false
	}
	if ok, after := s.connects.Admit(bucket.Now()); !ok {
		s.rateLimited(w, "node_connects", after)
		return nil, false
	}
	claims, ok := s.authenticate(w, r, token.FromRequest)
	if !ok {
		return nil, false
	}
	a.claims = claims
	if ok, after := s.teamPacer(claims.Team).Admit(bucket.Now()); !ok {
		s.rateLimited(w, "team_connects", after)
		return nil, false
	}
	if s.cluster != nil {
		a.route = s.cluster.routing(r)
		if owner, ok := s.cluster.owns(s, claims.Team, a.route); !ok {
			s.cluster.misrouted(w, r, owner)
			return nil, false
		}
	}
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, errorf(protocol.CodeInvalidRequest, "since must be a non-negative integer"))
			return nil, false
		}
		a.since, a.resume = n, true
	}
	if !s.conns.add() { // Shutdown began since the first check
		s.refuseDraining(w)
		return nil, false
	}
	acquiring := time.Now()
	team, err := s.teams.Acquire(r.Context(), claims.Team)
	s.metrics.startTeam.Observe(time.Since(acquiring).Seconds())
	if err != nil {
		s.conns.done()
		status, e := s.teamError(err)
		writeError(w, status, e)
		return nil, false
	}
	a.team = team
	if !s.member(w, team.Store(), claims) {
		a.release(s)
		return nil, false
	}
	return a, true
}

// refuseDraining answers a connection that came while the node drains: 503, marked for the
// proxy (protocol.HeaderRefused), with a reconnect time spread over DrainSpread.
func (s *Server) refuseDraining(w http.ResponseWriter) {
	w.Header().Set(protocol.HeaderRefused, "draining")
	writeError(w, http.StatusServiceUnavailable, &protocol.Error{Code: protocol.CodeOverloaded, Message: "draining",
		RetryAfterMS: s.jitter(s.cfg.DrainSpread).Milliseconds()})
}

// startSession upgrades an admitted request, registers its session with the team's hub, queues
// the hello (after a resume's replay), and starts the session's reader, which owns it from then
// on; the handler's goroutine returns.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, a *admittedWS) {
	if a.resume {
		s.awaitFeed(r.Context(), a.claims.Team, a.team.Store(), a.since)
	}
	conn, err := acceptWS(w, r)
	if err != nil {
		a.release(s)
		return // the upgrader has answered the client
	}
	sess := s.newSession(conn, a)
	team, st := a.claims.Team, a.team.Store()
	after := s.register(sess, st)
	if s.draining.Load() { // Shutdown began while this session was being set up
		sess.goodbye(endDraining, s.jitter(s.cfg.DrainSpread))
	} else if s.cluster != nil {
		// The ring may have given the team to another edge while the team loaded; a ring
		// change from here on finds this session registered and moves it.
		if _, ok := s.cluster.owns(s, team, a.route); !ok {
			s.cluster.moved.WithLabelValues("misrouted").Inc()
			sess.goodbye(endMoved, 0)
		}
		if home := s.visitorHome(a.route); home != "" {
			sess.visitor = true
			s.cluster.arrived(sess, home)
		}
	}

	start, resumed := after, false
	var first [][]byte
	if a.resume {
		replaying := time.Now()
		if frames, ok := s.replay(sess.ctx, st, sess, a.since, after); ok {
			start, resumed, first = a.since, true, frames
		}
		s.metrics.startReplay.Observe(time.Since(replaying).Seconds())
		s.metrics.resumes.WithLabelValues(strconv.FormatBool(resumed)).Inc()
	}
	hello, _ := json.Marshal(protocol.Hello{Type: protocol.FrameHello, Protocol: protocol.Subprotocol, Session: sess.id, Team: team,
		User: a.claims.User, Node: s.cfg.Node, Region: s.cfg.Region, Seq: start, Resumed: resumed,
		HeartbeatMS: s.cfg.HeartbeatInterval.Milliseconds()})
	// The token's life is the session's: it ends when a verifier would refuse the token.
	sess.expiry = time.AfterFunc(time.Until(a.claims.Expires.Add(token.Leeway)), func() { sess.goodbye(endTokenExpired, 0) })
	sess.goLive(append([][]byte{hello}, first...))
	s.metrics.startTotal.Observe(time.Since(a.arrived).Seconds())
	// The session reads on a goroutine of its own and this handler returns: the handler's stack
	// grew during the handshake and the load (16 KB, and Go never shrinks a running goroutine's
	// stack), and the request it holds is ~2.6 KB more. An idle connection then keeps only a
	// small reader stack. The tracker (conns) still counts the session until endSession.
	go func() {
		sess.readEnded(sess.readLoop())
		s.endSession(sess)
	}()
}

// newSession makes the session of an upgraded connection.
func (s *Server) newSession(conn *wsConn, a *admittedWS) *session {
	ctx, cancel := context.WithCancel(context.Background())
	sess := &session{srv: s, id: newSessionID(), team: a.team, user: a.claims.User, conn: conn, ctx: ctx}
	sess.stop = func() {
		sess.stopped.Store(true)
		cancel()
		conn.wake()
	}
	sess.requests.Set(s.cfg.RequestRate, s.cfg.RequestBurst)
	sess.throttle.onPause = s.metrics.onPause
	sess.throttle.waiting = s.metrics.onThrottled
	return sess
}

// register adds sess to its team's hub and returns the seq it gets events after.
func (s *Server) register(sess *session, st *cache.Store) int64 {
	team := sess.team.ID()
	h := s.hubFor(team, st)
	after, ok := h.register(sess)
	if !ok { // the hub of an earlier load of this team: take the current one
		s.hubs.CompareAndDelete(team, h)
		h = s.hubFor(team, st)
		after, _ = h.register(sess)
	}
	sess.hub = h
	s.sessions.Add(1)
	return after
}

// endSession is the one place a session ends, on its reader once readLoop returned: it leaves
// its hub, stops its writer and requests and waits for them, releases the team and the conns
// slot, and counts why it ended.
func (s *Server) endSession(sess *session) {
	sess.hub.unregister(sess)
	if sess.visitor {
		s.cluster.left(sess)
	}
	sess.seal()
	sess.stop()
	sess.expiry.Stop()
	sess.conn.close() // unblocks a writer stuck on a client that stopped reading
	sess.wg.Wait()
	sess.mu.Lock()
	if sess.closer != nil {
		sess.closer.Stop()
	}
	sess.mu.Unlock()
	s.sessions.Add(-1)
	sess.team.Release()
	s.conns.done()
	s.metrics.sessionEnded(sess.endReason())
}

// aheadWait bounds how long a resume whose since is ahead of this node waits for the team's
// feed to get there before it is refused (and the client must boot again).
const aheadWait = 2 * time.Second

// awaitFeed waits, up to aheadWait or the end of ctx, until the team's feed has fanned out
// since. A client resuming here from an edge of another region (a visitor sent home, or one
// whose region failed over) may have seen events that have not yet come down this region's
// link, whose trip is longer: its resume is not ahead of this node, only early. A client of
// a different history waits aheadWait for nothing and is refused as before. Polled: it is
// rare (a cross-region move), off the fan-out's path, and short.
func (s *Server) awaitFeed(ctx context.Context, team string, st *cache.Store, since int64) {
	if s.hubFor(team, st).seq() >= since {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, aheadWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.hubFor(team, st).seq() < since {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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
			frames = append(frames, sess.replayFrame(eventAnnotator(st, evs[i], s.cfg.MaxEventBytes, s.metrics, s.cfg.Annotate)))
		}
	}
	return frames, true
}
