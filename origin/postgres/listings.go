package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/weft-edge/weft/origin"
)

// The three listings, a page per request (the first contract) or streamed (stream=1: every
// page from the cursor on, one per line, docs/origin.md "Fewer round trips"). Either way an
// answer is one statement, so one snapshot: a keyset scan from the cursor in the primary key's
// order, read row by row as PostgreSQL sends them and cut into pages of the asked limit, each
// encoded and flushed as it fills, so neither side holds more than a page. A streamed answer
// ends after StreamRows rows (the edge asks again from the last cursor): one statement's
// snapshot holds back vacuum in the whole database for as long as it runs, and a bounded
// answer bounds that.

// listing is one listing: its rows' type, query and cursor key.
type listing[T any] struct {
	// keys is how many key columns a cursor holds (after the team).
	keys int
	// query selects the team's ($1) rows after the key ($2…) in key order, LIMIT the last
	// parameter.
	query string
	// one selects the object of ID $2 (users and channels: GET …/users/{id}, …/channels/{id}).
	one  string
	scan func(pgx.Rows, *T) error
	key  func(*T) []string
	page func(rows []T, next string) any
}

const (
	userColumns    = `id, team, name, real_name, display_name, title, avatar_url, tz, is_bot, deleted, updated`
	channelColumns = `id, team, name, topic, purpose, is_private, is_archived,
		to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), creator, member_count, updated`
)

var usersListing = &listing[origin.User]{keys: 1,
	query: `SELECT ` + userColumns + ` FROM weft_users WHERE team = $1 AND id > $2 ORDER BY id LIMIT $3`,
	one:   `SELECT ` + userColumns + ` FROM weft_users WHERE team = $1 AND id = $2`,
	scan: func(r pgx.Rows, u *origin.User) error {
		return r.Scan(&u.ID, &u.Team, &u.Name, &u.RealName, &u.DisplayName, &u.Title, &u.AvatarURL, &u.TZ, &u.IsBot, &u.Deleted, &u.Updated)
	},
	key:  func(u *origin.User) []string { return []string{u.ID} },
	page: func(us []origin.User, next string) any { return origin.UsersPage{Users: us, NextCursor: next} },
}

var channelsListing = &listing[origin.Channel]{keys: 1,
	query: `SELECT ` + channelColumns + ` FROM weft_channels WHERE team = $1 AND id > $2 ORDER BY id LIMIT $3`,
	one:   `SELECT ` + channelColumns + ` FROM weft_channels WHERE team = $1 AND id = $2`,
	scan: func(r pgx.Rows, c *origin.Channel) error {
		return r.Scan(&c.ID, &c.Team, &c.Name, &c.Topic, &c.Purpose, &c.IsPrivate, &c.IsArchived, &c.Created, &c.Creator, &c.MemberCount, &c.Updated)
	},
	key:  func(c *origin.Channel) []string { return []string{c.ID} },
	page: func(cs []origin.Channel, next string) any { return origin.ChannelsPage{Channels: cs, NextCursor: next} },
}

var membershipsListing = &listing[origin.Membership]{keys: 2,
	query: `SELECT channel, user_id, updated FROM weft_memberships
		WHERE team = $1 AND (channel, user_id) > ($2, $3) ORDER BY channel, user_id LIMIT $4`,
	scan: func(r pgx.Rows, m *origin.Membership) error { return r.Scan(&m.Channel, &m.User, &m.Updated) },
	key:  func(m *origin.Membership) []string { return []string{m.Channel, m.User} },
	page: func(ms []origin.Membership, next string) any {
		return origin.MembershipsPage{Memberships: ms, NextCursor: next}
	},
}

// listRequest is a listing request, read and checked.
type listRequest struct {
	team   string
	key    []string
	limit  int
	stream bool
}

// parseList reads a listing request. This origin announces streams and no partitions, so a
// partition other than the whole listing is a request it never invited.
func parseList(r *http.Request, keys int) (listRequest, string) {
	q := r.URL.Query()
	req := listRequest{team: r.PathValue("team"), limit: DefaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return req, "invalid_limit"
		}
		req.limit = min(n, MaxLimit)
	}
	switch q.Get("stream") {
	case "", "0":
	case "1":
		req.stream = true
	default:
		return req, "invalid_request"
	}
	if v := q.Get("partitions"); v != "" && (v != "1" || q.Get("partition") != "0") || v == "" && q.Has("partition") {
		return req, "invalid_partition"
	}
	var ok bool
	if req.key, ok = decodeCursor(q.Get("cursor"), keys); !ok {
		return req, "invalid_cursor"
	}
	return req, ""
}

// serveListing answers one listing's requests.
func serveListing[T any](s *Server, l *listing[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, bad := parseList(r, l.keys)
		if bad != "" {
			writeError(w, http.StatusBadRequest, bad, "")
			return
		}
		ctx := r.Context()
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			s.failed(w, r, err)
			return
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // read-only: nothing to undo
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM weft_teams WHERE id = $1)`, req.team).Scan(&exists); err != nil {
			s.failed(w, r, err)
			return
		}
		if !exists {
			writeError(w, http.StatusNotFound, "team_not_found", "")
			return
		}
		out := &pageWriter[T]{l: l, w: w, stream: req.stream}
		if req.stream {
			out.rc = http.NewResponseController(w)
		}
		// One row past the answer's last tells whether the last page is the listing's last.
		rows := req.limit
		if req.stream {
			rows = max(s.cfg.StreamRows/req.limit, 1) * req.limit
		}
		args := []any{req.team}
		for _, k := range req.key {
			args = append(args, k)
		}
		if err := out.copy(ctx, tx, append(args, rows+1), req.limit, rows); err != nil {
			if out.lines == 0 {
				s.failed(w, r, err)
				return
			}
			if ctx.Err() == nil {
				s.cfg.Logger.Warn("database, mid-stream", "path", r.URL.Path, "err", err)
			}
			// Lines are out: only a broken answer tells the edge this one did not end, and it
			// asks again from the last line's cursor.
			panic(http.ErrAbortHandler)
		}
	}
}

// serveObject answers GET …/users/{id} or …/channels/{id}: one object, 404 when absent (the
// contract's optional lookups, which the query scenario compares the edge's answers with).
func serveObject[T any](s *Server, l *listing[T], notFound string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rows, err := s.pool.Query(r.Context(), l.one, r.PathValue("team"), r.PathValue("id"))
		if err != nil {
			s.failed(w, r, err)
			return
		}
		defer rows.Close()
		var obj T
		found := rows.Next()
		if found {
			err = l.scan(rows, &obj)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		switch {
		case err != nil:
			s.failed(w, r, err)
		case !found:
			writeError(w, http.StatusNotFound, notFound, "")
		default:
			body, err := json.Marshal(&obj)
			if err != nil {
				s.failed(w, r, err)
				return
			}
			writeJSON(w, body)
		}
	}
}

// pageWriter cuts a listing's rows into pages and writes them: one JSON body, or a line each.
type pageWriter[T any] struct {
	l      *listing[T]
	w      http.ResponseWriter
	rc     *http.ResponseController // streams: flushes each line
	stream bool
	lines  int
	buf    bytes.Buffer
	enc    *json.Encoder // on buf
}

// copy reads the query's rows into pages of limit, writing each full page when the row after
// it arrives (its cursor then is not the last), and stops after rows rows.
func (p *pageWriter[T]) copy(ctx context.Context, tx pgx.Tx, args []any, limit, rows int) error {
	res, err := tx.Query(ctx, p.l.query, args...)
	if err != nil {
		return err
	}
	defer res.Close()
	page := make([]T, 0, limit)
	for n := 0; res.Next(); n++ {
		if len(page) == limit {
			if err := p.write(page, encodeCursor(p.l.key(&page[limit-1]))); err != nil {
				return err
			}
			if n == rows {
				return nil // the answer's bound: the row read is the next answer's first
			}
			page = page[:0]
		}
		page = append(page, *new(T))
		if err := p.l.scan(res, &page[len(page)-1]); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		return err
	}
	return p.write(page, "")
}

// write writes one page, with its cursor ("" after the listing's last row), and a newline
// (a stream's line end; a page's body may end with one).
func (p *pageWriter[T]) write(rows []T, next string) error {
	p.buf.Reset()
	if p.enc == nil {
		p.enc = json.NewEncoder(&p.buf)
	}
	if err := p.enc.Encode(p.l.page(rows, next)); err != nil {
		return err
	}
	p.lines++
	if !p.stream {
		writeJSON(p.w, p.buf.Bytes())
		return nil
	}
	if p.lines == 1 {
		p.w.Header().Set("Content-Type", origin.StreamType)
	}
	if _, err := p.w.Write(p.buf.Bytes()); err != nil {
		return fmt.Errorf("writing the stream: %w", err)
	}
	return p.rc.Flush()
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
