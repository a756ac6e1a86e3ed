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
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

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
	Token  string
	Logger *slog.Logger
}

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
	s := &Server{pool: pool, cfg: cfg, mux: http.NewServeMux()}
	const team = "GET /origin/v1/teams/{team}"
	s.mux.HandleFunc(team, s.handleTeam)
	s.mux.HandleFunc(team+"/users", s.handleList(usersPage))
	s.mux.HandleFunc(team+"/channels", s.handleList(channelsPage))
	s.mux.HandleFunc(team+"/memberships", s.handleList(membershipsPage))
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
	var body []byte
	err := s.pool.QueryRow(r.Context(), `
		SELECT json_build_object('team', json_build_object('id', t.id, 'name', t.name, 'domain', t.domain,
			'user_count', (SELECT count(*) FROM weft_users u WHERE u.team = t.id),
			'channel_count', (SELECT count(*) FROM weft_channels c WHERE c.team = t.id),
			'updated', t.updated), 'seq', coalesce(p.seq, 0))::text
		FROM weft_teams t LEFT JOIN weft_published p ON p.team = t.id WHERE t.id = $1`, r.PathValue("team")).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		writeError(w, http.StatusNotFound, "team_not_found", "")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	writeJSON(w, body)
}

// page is one listing: how many key columns its cursor holds (after team), and how it reads
// up to limit rows after a key into the answer's body.
type page struct {
	keys int
	// read returns the rows' count, the last row's key, and the answer given the next cursor.
	read func(ctx context.Context, tx pgx.Tx, team string, key []string, limit int) (n int, last []string, answer func(next string) any, err error)
}

// The listings. Rows are scanned in Go and encoded with encoding/json rather than built as
// JSON by the database: measured on the 32k team, PostgreSQL's json_agg made each page cost
// several times the query that found its rows.
var (
	usersPage = page{keys: 1, read: func(ctx context.Context, tx pgx.Tx, team string, key []string, limit int) (int, []string, func(string) any, error) {
		rows, _ := tx.Query(ctx, `SELECT id, team, name, real_name, display_name, title, avatar_url, tz, is_bot, deleted, updated
			FROM weft_users WHERE team = $1 AND id > $2 ORDER BY id LIMIT $3`, team, key[0], limit)
		us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (origin.User, error) {
			var u origin.User
			err := r.Scan(&u.ID, &u.Team, &u.Name, &u.RealName, &u.DisplayName, &u.Title, &u.AvatarURL, &u.TZ, &u.IsBot, &u.Deleted, &u.Updated)
			return u, err
		})
		if err != nil || len(us) == 0 {
			return 0, nil, func(string) any { return origin.UsersPage{Users: []origin.User{}} }, err
		}
		return len(us), []string{us[len(us)-1].ID}, func(next string) any { return origin.UsersPage{Users: us, NextCursor: next} }, nil
	}}
	channelsPage = page{keys: 1, read: func(ctx context.Context, tx pgx.Tx, team string, key []string, limit int) (int, []string, func(string) any, error) {
		rows, _ := tx.Query(ctx, `SELECT id, team, name, topic, purpose, is_private, is_archived,
			to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), creator, member_count, updated
			FROM weft_channels WHERE team = $1 AND id > $2 ORDER BY id LIMIT $3`, team, key[0], limit)
		cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (origin.Channel, error) {
			var c origin.Channel
			err := r.Scan(&c.ID, &c.Team, &c.Name, &c.Topic, &c.Purpose, &c.IsPrivate, &c.IsArchived, &c.Created, &c.Creator, &c.MemberCount, &c.Updated)
			return c, err
		})
		if err != nil || len(cs) == 0 {
			return 0, nil, func(string) any { return origin.ChannelsPage{Channels: []origin.Channel{}} }, err
		}
		return len(cs), []string{cs[len(cs)-1].ID}, func(next string) any { return origin.ChannelsPage{Channels: cs, NextCursor: next} }, nil
	}}
	membershipsPage = page{keys: 2, read: func(ctx context.Context, tx pgx.Tx, team string, key []string, limit int) (int, []string, func(string) any, error) {
		rows, _ := tx.Query(ctx, `SELECT channel, user_id, updated FROM weft_memberships
			WHERE team = $1 AND (channel, user_id) > ($2, $3) ORDER BY channel, user_id LIMIT $4`, team, key[0], key[1], limit)
		ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (origin.Membership, error) {
			var m origin.Membership
			err := r.Scan(&m.Channel, &m.User, &m.Updated)
			return m, err
		})
		if err != nil || len(ms) == 0 {
			return 0, nil, func(string) any { return origin.MembershipsPage{Memberships: []origin.Membership{}} }, err
		}
		return len(ms), []string{ms[len(ms)-1].Channel, ms[len(ms)-1].User}, func(next string) any {
			return origin.MembershipsPage{Memberships: ms, NextCursor: next}
		}, nil
	}}
)

// handleList serves one listing's pages. The cursor is the last row's key: a walk resumes
// after it whatever was added or removed meanwhile, so it neither repeats nor skips a row
// that existed throughout, and each page is one statement, so one consistent snapshot.
func (s *Server) handleList(p page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("stream") != "" || q.Get("partitions") != "" {
			// Not announced in the team's answer: an edge never asks.
			writeError(w, http.StatusBadRequest, "invalid_request", "this origin serves plain pages only")
			return
		}
		limit := DefaultLimit
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeError(w, http.StatusBadRequest, "invalid_limit", "")
				return
			}
			limit = min(n, MaxLimit)
		}
		key, ok := decodeCursor(q.Get("cursor"), p.keys)
		if !ok {
			writeError(w, http.StatusBadRequest, "invalid_cursor", "")
			return
		}
		team := r.PathValue("team")
		tx, err := s.pool.BeginTx(r.Context(), pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			s.failed(w, r, err)
			return
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // read-only: nothing to undo
		var exists bool
		if err := tx.QueryRow(r.Context(), `SELECT EXISTS (SELECT 1 FROM weft_teams WHERE id = $1)`, team).Scan(&exists); err != nil {
			s.failed(w, r, err)
			return
		}
		if !exists {
			writeError(w, http.StatusNotFound, "team_not_found", "")
			return
		}
		n, last, answer, err := p.read(r.Context(), tx, team, key, limit)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		next := ""
		if n == limit {
			next = encodeCursor(last)
		}
		out, err := json.Marshal(answer(next))
		if err != nil {
			s.failed(w, r, err)
			return
		}
		writeJSON(w, out)
	}
}

// encodeCursor writes key parts as one opaque, URL-safe token.
func encodeCursor(parts []string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// decodeCursor reads a cursor of n key parts; "" is the start (keys that sort before any ID).
func decodeCursor(c string, n int) ([]string, bool) {
	if c == "" {
		return make([]string, n), true
	}
	if len(c) > 4096 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, false
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n {
		return nil, false
	}
	return parts, true
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
