package reference

import (
	"crypto/subtle"
	"errors"
	"fmt"
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
	// Listings is what the team endpoint announces of the listings' newer forms.
	Listings ListingsConfig
}

// ListingsConfig sets what the team endpoint announces of the listings' newer forms
// (docs/origin.md, "Fewer round trips"). The listings serve every form whatever is announced;
// an edge uses only what is. The zero value announces streams and partitions.
type ListingsConfig struct {
	// Plain announces nothing: the team answer of the first contract, walked a page per request.
	Plain bool
	// NoStream leaves streams out of the announcement.
	NoStream bool
	// MaxPartitions is the most partitions announced for one listing: one per PartitionRows rows,
	// up to this. 0 means 8; 1 announces no partitions.
	MaxPartitions int
	// PartitionRows is the rows per announced partition; 0 means 250,000.
	PartitionRows int
	// StreamPages ends a streamed answer after this many pages, with a cursor to go on from;
	// 0 streams to the end of the listing.
	StreamPages int
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
	snapshotChunk       = 1000 // rows per page writer call in a snapshot
	maxAskedPartitions  = 1024 // the most partitions a listing request may ask for
	defaultPartitions   = 8
	defaultPartRows     = 250_000
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
	l := &cfg.Listings
	if l.MaxPartitions < 0 || l.MaxPartitions > origin.MaxPartitions || l.PartitionRows < 0 || l.StreamPages < 0 {
		return nil, fmt.Errorf("origin: ServerConfig.Listings: partitions must be in [0, %d], rows per partition and stream pages not negative", origin.MaxPartitions)
	}
	if l.MaxPartitions == 0 {
		l.MaxPartitions = defaultPartitions
	}
	if l.PartitionRows == 0 {
		l.PartitionRows = defaultPartRows
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
	s.mux.HandleFunc(teamRoute+"/users", s.handleList(usersListing))
	s.mux.HandleFunc(teamRoute+"/users/{id}", s.handleUser)
	s.mux.HandleFunc(teamRoute+"/channels", s.handleList(channelsListing))
	s.mux.HandleFunc(teamRoute+"/channels/{id}", s.handleChannel)
	s.mux.HandleFunc(teamRoute+"/memberships", s.handleList(membershipsListing))
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

func (s *Server) handleTeam(w http.ResponseWriter, r *http.Request) {
	st := s.teamFromPath(w, r)
	if st == nil {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = append(s.appendListings(st, st.appendTeamInfoOpen(*b)), '}')
	writeJSON(w, *b)
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
		buf, from = st.appendUsers(buf, from, allUsers, snapshotChunk, comma)
		return from >= 0
	})
	from = 0
	section(`,"channels":[`, func(comma bool) bool {
		buf, from = st.appendChannels(buf, from, allChannels, snapshotChunk, comma)
		return from >= 0
	})
	u, c := 0, 0
	section(`,"memberships":[`, func(comma bool) bool {
		buf, u, c = st.appendMemberships(buf, u, c, allUsers, snapshotChunk, comma)
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
