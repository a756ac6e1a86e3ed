// Package postgres is an origin on PostgreSQL: the origin contract (docs/origin.md) served
// from tables of teams, users, channels and memberships, and every change to them, by this
// origin's API or by any program writing the tables, published to JetStream exactly once, in
// order, through a transactional outbox.
//
// The tables and the triggers that make the outbox are in migrations/ (Migrate applies them).
// A trigger gives each change its team's next seq in the change's own transaction, so a
// change and its event commit or roll back together; the Publisher reads the outbox in seq
// order and publishes each event with Nats-Msg-Id team:seq before marking it published.
package postgres

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/weft-edge/weft/origin"
)

// Page sizes: a request without a limit gets DefaultLimit rows, and none gets more than
// MaxLimit (the contract lets an origin clamp; the edge asks for 5,000).
const (
	DefaultLimit = 1000
	MaxLimit     = 10_000
)

// Config configures a Server.
type Config struct {
	// Token, when set, is the service token every contract request must carry (Bearer).
	Token string
	// StreamRows bounds the rows of one streamed answer (rounded down to whole pages, at least
	// one); the edge asks again from its last cursor. 0: DefaultStreamRows.
	StreamRows int
	// MaxPartitions is the most partitions the team's answer announces for a listing: one per
	// PartitionRows rows (0: 250,000, the reference origin's rule), up to this (at most
	// origin.MaxPartitions). 0 or 1: none, streams only, which loaded the giant team faster
	// on the two cores it was measured on (docs/origin.md, "The origin on PostgreSQL").
	MaxPartitions, PartitionRows int
	// WriteTimeout bounds each write of an answer (a page, a line of a stream, a part of a
	// snapshot); default 30s. The edge reads as it decodes, so a write that waits this long
	// is an edge gone (a partition without a reset), which must not hold the statement, its
	// snapshot and its connection for as long as TCP takes to give up.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// DefaultStreamRows is Config.StreamRows's default: a giant team's memberships (5 million) in
// 5 answers of about a second each, so no statement holds its snapshot for long.
const DefaultStreamRows = 1_000_000

// Server serves the origin contract's endpoints, and the write API (admin.go), from the
// database behind pool.
type Server struct {
	pool *pgxpool.Pool
	cfg  Config
	mux  *http.ServeMux
}

// NewServer returns a Server on pool, whose schema Migrate has made.
func NewServer(pool *pgxpool.Pool, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StreamRows <= 0 {
		cfg.StreamRows = DefaultStreamRows
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.PartitionRows <= 0 {
		cfg.PartitionRows = 250_000
	}
	cfg.MaxPartitions = min(max(cfg.MaxPartitions, 1), origin.MaxPartitions, buckets)
	s := &Server{pool: pool, cfg: cfg, mux: http.NewServeMux()}
	const team = "GET /origin/v1/teams/{team}"
	s.mux.HandleFunc(team, s.handleTeam)
	s.mux.HandleFunc(team+"/users", serveListing(s, usersListing))
	s.mux.HandleFunc(team+"/channels", serveListing(s, channelsListing))
	s.mux.HandleFunc(team+"/memberships", serveListing(s, membershipsListing))
	s.mux.HandleFunc(team+"/snapshot", s.handleSnapshot)
	s.mux.HandleFunc(team+"/users/{id}", serveObject(s, usersListing, "user_not_found"))
	s.mux.HandleFunc(team+"/channels/{id}", serveObject(s, channelsListing, "channel_not_found"))
	s.mux.HandleFunc("POST /origin/admin/teams/{team}/events", s.handlePostEvents)
	return s
}

// ServeHTTP checks the service token, then serves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			writeError(w, http.StatusUnauthorized, "invalid_auth", "")
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// handleTeam answers the team with the last seq the stream acknowledged. Every page read
// after it reflects every committed change, and so every published one: the outbox publishes
// only committed events, which is rule 5 of the contract without a snapshot spanning requests.
func (s *Server) handleTeam(w http.ResponseWriter, r *http.Request) {
	info, err := s.team(r.Context(), s.pool, r.PathValue("team"))
	if errors.Is(err, pgx.ErrNoRows) {
		writeError(w, http.StatusNotFound, "team_not_found", "")
		return
	}
	if err == nil {
		var body []byte
		if body, err = json.Marshal(info); err == nil {
			writeJSON(w, body)
			return
		}
	}
	s.failed(w, r, err)
}

// team reads the team's answer: the team, its last published seq, and the listings' forms:
// streams, and one partition per PartitionRows rows of each listing, up to MaxPartitions.
// The announcement is always there, partitions or not: an edge reads the partition counts at
// the start of each load, so a change of --max-partitions takes effect at the next load.
func (s *Server) team(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, team string) (*origin.TeamInfo, error) {
	info := &origin.TeamInfo{Listings: &origin.Listings{Stream: true}}
	var memberships int64
	t := &info.Team
	// The memberships' count is the channels' member_count (kept by the memberships' trigger):
	// counting a giant team's 5 million rows on every team request would cost a second.
	err := q.QueryRow(ctx, `SELECT t.id, t.name, t.domain, t.updated, coalesce(p.seq, 0),
			(SELECT count(*) FROM weft_users u WHERE u.team = t.id),
			(SELECT count(*) FROM weft_channels c WHERE c.team = t.id),
			(SELECT coalesce(sum(member_count), 0) FROM weft_channels c WHERE c.team = t.id)
		FROM weft_teams t LEFT JOIN weft_published p ON p.team = t.id WHERE t.id = $1`, team).
		Scan(&t.ID, &t.Name, &t.Domain, &t.Updated, &info.Seq, &t.UserCount, &t.ChannelCount, &memberships)
	if err != nil {
		return nil, err
	}
	parts := func(rows int64) int {
		return int(min(max((rows+int64(s.cfg.PartitionRows)-1)/int64(s.cfg.PartitionRows), 1), int64(s.cfg.MaxPartitions)))
	}
	info.Listings.Partitions = origin.ListingPartitions{Users: parts(int64(t.UserCount)), Channels: parts(int64(t.ChannelCount)),
		Memberships: parts(memberships)}
	return info, nil
}

// failed answers a database failure 503, which the edge counts against the origin's health,
// unless the client went away.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	s.cfg.Logger.Warn("database", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "database_unavailable", "")
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message,omitempty"`
	}{code, message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
