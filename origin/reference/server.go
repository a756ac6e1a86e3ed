package reference

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weft-edge/weft/origin"
)

// ServerConfig configures a reference origin. The zero value of every field but World is its
// default.
type ServerConfig struct {
	// World is the synthetic world the server starts from. Required. A World never changes, so
	// several servers can share one; each keeps its own changes.
	World *World
	// Token is the service token every request must carry as "Authorization: Bearer <token>",
	// the admin endpoints included. "" turns authentication off.
	Token string
	// Publisher publishes each change as a team event. nil records events as published at once
	// without sending them anywhere.
	Publisher origin.Publisher
	// Logger receives what the server cannot return to a caller (a failed snapshot write, an
	// activity publish error). nil discards it.
	Logger *slog.Logger
	// MaxPageLimit caps the limit parameter of listings; a larger limit is clamped to it.
	// 0 means 10000.
	MaxPageLimit int
}

// Server is the reference origin: the system of record weft sits in front of. It serves the
// origin contract of docs/origin.md over HTTP for the teams of a World, applies changes
// (mutate.go) and publishes them as events in a gap-free sequence per team.
type Server struct {
	cfg    ServerConfig
	world  *World
	log    *slog.Logger
	teams  []*teamState
	mux    *http.ServeMux
	faults atomic.Pointer[Faults]
	bufs   sync.Pool // *[]byte
}

const (
	defaultPageLimit    = 1000
	defaultMaxPageLimit = 10000
	snapshotChunk       = 1000      // rows per page writer call in a snapshot
	flushBytes          = 256 << 10 // a snapshot writes to the connection past this many bytes
	maxPooledBuf        = 8 << 20
)

// NewServer validates cfg and builds the server. It starts nothing: serve it with net/http.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.World == nil {
		return nil, errors.New("origin: ServerConfig.World is required")
	}
	if cfg.MaxPageLimit < 0 {
		return nil, errors.New("origin: ServerConfig.MaxPageLimit must not be negative")
	}
	if cfg.MaxPageLimit == 0 {
		cfg.MaxPageLimit = defaultMaxPageLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, world: cfg.World, log: cfg.Logger, mux: http.NewServeMux()}
	s.faults.Store(&Faults{})
	s.teams = make([]*teamState, len(cfg.World.teams))
	for t := range s.teams {
		s.teams[t] = newTeamState(cfg.World, t)
	}
	const teamRoute = "GET /origin/v1/teams/{team}"
	s.mux.HandleFunc(teamRoute, s.handleTeam)
	s.mux.HandleFunc(teamRoute+"/users", s.handleList(cursorUsers, 1, "users", usersPage))
	s.mux.HandleFunc(teamRoute+"/users/{id}", s.handleUser)
	s.mux.HandleFunc(teamRoute+"/channels", s.handleList(cursorChannels, 1, "channels", channelsPage))
	s.mux.HandleFunc(teamRoute+"/channels/{id}", s.handleChannel)
	s.mux.HandleFunc(teamRoute+"/memberships", s.handleList(cursorMemberships, 2, "memberships", membershipsPage))
	s.mux.HandleFunc(teamRoute+"/snapshot", s.handleSnapshot)
	s.mux.HandleFunc("GET /origin/admin/faults", s.handleGetFaults)
	s.mux.HandleFunc("POST /origin/admin/faults", s.handleSetFaults)
	s.mux.HandleFunc("POST /origin/admin/teams/{team}/events", s.handlePostEvents) // admin.go
	return s, nil
}

// ServeHTTP injects the configured faults (never on /origin/admin/), checks the service
// token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/origin/admin/") && !s.injectFaults(w, r) {
		return
	}
	if s.cfg.Token != "" && !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, "invalid_auth")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

// team returns the state of a team ID, or nil.
func (s *Server) team(id string) *teamState {
	t, ok := s.world.teamIndex(id)
	if !ok {
		return nil
	}
	return s.teams[t]
}

func (s *Server) teamFromPath(w http.ResponseWriter, r *http.Request) *teamState {
	st := s.team(r.PathValue("team"))
	if st == nil {
		writeError(w, http.StatusNotFound, "team_not_found")
	}
	return st
}

// listParams reads a listing's team, limit and cursor, answering the error itself.
func (s *Server) listParams(w http.ResponseWriter, r *http.Request, kind byte, n int) (*teamState, int, []int, bool) {
	st := s.teamFromPath(w, r)
	if st == nil {
		return nil, 0, nil, false
	}
	q := r.URL.Query()
	limit := min(defaultPageLimit, s.cfg.MaxPageLimit)
	if v := q.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 {
			writeError(w, http.StatusBadRequest, "invalid_limit")
			return nil, 0, nil, false
		}
		limit = min(l, s.cfg.MaxPageLimit)
	}
	pos, err := decodeCursor(kind, n, q.Get("cursor"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_cursor")
		return nil, 0, nil, false
	}
	return st, limit, pos, true
}

func (s *Server) handleTeam(w http.ResponseWriter, r *http.Request) {
	st := s.teamFromPath(w, r)
	if st == nil {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = append(st.appendTeamInfoOpen(*b), '}')
	writeJSON(w, *b)
}

// handleList answers one page of a listing, {"<key>":[…],"next_cursor":…}, read at the
// cursor's position (n numbers). page appends up to limit items from pos and returns where the
// next page starts, in next's first n numbers (next[0] is -1 at the end).
func (s *Server) handleList(kind byte, n int, key string,
	page func(st *teamState, b []byte, pos []int, limit int) (_ []byte, next [2]int)) http.HandlerFunc {
	open := `{"` + key + `":[`
	return func(w http.ResponseWriter, r *http.Request) {
		st, limit, pos, ok := s.listParams(w, r, kind, n)
		if !ok {
			return
		}
		b := s.getBuf()
		defer s.putBuf(b)
		buf, next := page(st, append(*b, open...), pos, limit)
		*b = endPage(buf, kind, next[:n]...)
		writeJSON(w, *b)
	}
}

func usersPage(st *teamState, b []byte, pos []int, limit int) ([]byte, [2]int) {
	b, next := st.appendUsers(b, pos[0], limit, false)
	return b, [2]int{next}
}

func channelsPage(st *teamState, b []byte, pos []int, limit int) ([]byte, [2]int) {
	b, next := st.appendChannels(b, pos[0], limit, false)
	return b, [2]int{next}
}

func membershipsPage(st *teamState, b []byte, pos []int, limit int) ([]byte, [2]int) {
	b, nu, nc := st.appendMemberships(b, pos[0], pos[1], limit, false)
	return b, [2]int{nu, nc}
}

// endPage closes the array and writes next_cursor: "" when next[0] is -1 (the end).
func endPage(b []byte, kind byte, next ...int) []byte {
	b = append(b, `],"next_cursor":`...)
	if next[0] < 0 {
		b = append(b, `""`...)
	} else {
		b = appendString(b, encodeCursor(kind, next...))
	}
	return append(b, '}')
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	st := s.teamFromPath(w, r)
	if st == nil {
		return
	}
	t, u, ok := parseObjectID('U', r.PathValue("id"))
	if !ok || t != st.idx || !st.hasUser(u) {
		writeError(w, http.StatusNotFound, "user_not_found")
		return
	}
	st.mu.RLock()
	user := st.user(u)
	st.mu.RUnlock()
	writeJSON(w, appendUser(nil, &user))
}

func (s *Server) handleChannel(w http.ResponseWriter, r *http.Request) {
	st := s.teamFromPath(w, r)
	if st == nil {
		return
	}
	t, c, ok := parseObjectID('C', r.PathValue("id"))
	var ch origin.Channel
	if ok && t == st.idx {
		st.mu.RLock()
		ch, ok = st.channel(c)
		st.mu.RUnlock()
	}
	if !ok || t != st.idx {
		writeError(w, http.StatusNotFound, "channel_not_found")
		return
	}
	writeJSON(w, appendChannel(nil, &ch))
}

// handleSnapshot streams the whole team in one body, the way clients booted before Flannel.
// It is written page by page, each under the read lock of its own page only, so a snapshot of
// a giant team never blocks changes for seconds: like a paged load, it reflects at least every
// event up to its seq, and objects carry their versions.
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	st := s.teamFromPath(w, r)
	if st == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	b := s.getBuf()
	defer s.putBuf(b)
	buf := *b
	var err error
	flush := func(force bool) {
		if err == nil && (force || len(buf) >= flushBytes) {
			_, err = w.Write(buf)
			buf = buf[:0]
		}
	}
	// section writes one array, page by page; a page writer returns false after the last page.
	section := func(open string, page func(comma bool) bool) {
		buf = append(buf, open...)
		wrote := false
		for more := true; more && err == nil; flush(false) {
			n := len(buf)
			more = page(wrote)
			wrote = wrote || len(buf) > n
		}
		buf = append(buf, ']')
	}
	buf = st.appendTeamInfoOpen(buf)
	from := 0
	section(`,"users":[`, func(comma bool) bool {
		buf, from = st.appendUsers(buf, from, snapshotChunk, comma)
		return from >= 0
	})
	from = 0
	section(`,"channels":[`, func(comma bool) bool {
		buf, from = st.appendChannels(buf, from, snapshotChunk, comma)
		return from >= 0
	})
	u, c := 0, 0
	section(`,"memberships":[`, func(comma bool) bool {
		buf, u, c = st.appendMemberships(buf, u, c, snapshotChunk, comma)
		return u >= 0
	})
	buf = append(buf, '}')
	flush(true)
	*b = buf[:0]
	if err != nil {
		s.log.Debug("origin: snapshot write failed", "team", st.id, "err", err)
	}
}

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (s *Server) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		s.bufs.Put(b)
	}
}

func writeJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// writeError answers {"error": code}. Codes: team_not_found, user_not_found,
// channel_not_found, invalid_cursor, invalid_limit, invalid_request, invalid_auth,
// injected_fault.
func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(appendString([]byte(`{"error":`), code), "}\n"...))
}
