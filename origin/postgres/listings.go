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
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/weft-edge/weft/origin"
)

// The three listings, a page per request (the first contract), streamed (stream=1: every page
// from the cursor on, one per line), and in partitions (partition=i&partitions=n), as
// docs/origin.md "Fewer round trips" has them. Either way an answer is one statement, so one
// snapshot: a keyset scan from the cursor, read row by row as PostgreSQL sends them and cut
// into pages of the asked limit, each encoded and flushed as it fills, so neither side holds
// more than a page. A streamed answer ends after StreamRows rows (the edge asks again from the
// last cursor): one statement's snapshot holds back vacuum in the whole database for as long as
// it runs, and a bounded answer bounds that.
//
// A partition is a range of buckets, each row's bucket a hash of its ID (a membership's, of its
// user's: weft_bucket, migration 2), which never moves while the team changes; a partition is
// walked in (bucket, key) order on its own index, and its cursors carry the bucket and the
// partition's end. The whole listing is walked in the primary key's order.

// buckets is how many buckets weft_bucket spreads rows over: the most partitions a listing
// can have.
const buckets = 1024

// listing is one listing: its rows' type, queries and cursor key.
type listing[T any] struct {
	// keys is how many key columns a cursor holds (after the team).
	keys int
	// query selects the team's ($1) rows after the key ($2…) in key order, LIMIT the last
	// parameter.
	query string
	// part selects the team's ($1) rows in buckets below $2, after the bucket and key ($3,
	// $4…) in (bucket, key) order, LIMIT the last parameter, with the row's bucket last.
	part string
	// one selects the object of ID $2 (users and channels: GET …/users/{id}, …/channels/{id}).
	one  string
	scan func(r pgx.Rows, row *T, more ...any) error
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
	part: `SELECT ` + userColumns + `, weft_bucket(id) FROM weft_users
		WHERE team = $1 AND weft_bucket(id) < $2 AND (weft_bucket(id), id) > ($3, $4) ORDER BY weft_bucket(id), id LIMIT $5`,
	one: `SELECT ` + userColumns + ` FROM weft_users WHERE team = $1 AND id = $2`,
	scan: func(r pgx.Rows, u *origin.User, more ...any) error {
		return r.Scan(append([]any{&u.ID, &u.Team, &u.Name, &u.RealName, &u.DisplayName, &u.Title, &u.AvatarURL, &u.TZ, &u.IsBot, &u.Deleted, &u.Updated}, more...)...)
	},
	key:  func(u *origin.User) []string { return []string{u.ID} },
	page: func(us []origin.User, next string) any { return origin.UsersPage{Users: us, NextCursor: next} },
}

var channelsListing = &listing[origin.Channel]{keys: 1,
	query: `SELECT ` + channelColumns + ` FROM weft_channels WHERE team = $1 AND id > $2 ORDER BY id LIMIT $3`,
	part: `SELECT ` + channelColumns + `, weft_bucket(id) FROM weft_channels
		WHERE team = $1 AND weft_bucket(id) < $2 AND (weft_bucket(id), id) > ($3, $4) ORDER BY weft_bucket(id), id LIMIT $5`,
	one: `SELECT ` + channelColumns + ` FROM weft_channels WHERE team = $1 AND id = $2`,
	scan: func(r pgx.Rows, c *origin.Channel, more ...any) error {
		return r.Scan(append([]any{&c.ID, &c.Team, &c.Name, &c.Topic, &c.Purpose, &c.IsPrivate, &c.IsArchived, &c.Created, &c.Creator, &c.MemberCount, &c.Updated}, more...)...)
	},
	key:  func(c *origin.Channel) []string { return []string{c.ID} },
	page: func(cs []origin.Channel, next string) any { return origin.ChannelsPage{Channels: cs, NextCursor: next} },
}

// Memberships: the whole listing by channel, then user (the primary key); a partition by the
// user's bucket, then user, then channel (its index, which holds updated too).
var membershipsListing = &listing[origin.Membership]{keys: 2,
	query: `SELECT channel, user_id, updated FROM weft_memberships
		WHERE team = $1 AND (channel, user_id) > ($2, $3) ORDER BY channel, user_id LIMIT $4`,
	part: `SELECT channel, user_id, updated, weft_bucket(user_id) FROM weft_memberships
		WHERE team = $1 AND weft_bucket(user_id) < $2 AND (weft_bucket(user_id), user_id, channel) > ($3, $4, $5)
		ORDER BY weft_bucket(user_id), user_id, channel LIMIT $6`,
	scan: func(r pgx.Rows, m *origin.Membership, more ...any) error {
		return r.Scan(append([]any{&m.Channel, &m.User, &m.Updated}, more...)...)
	},
	key: func(m *origin.Membership) []string { return []string{m.Channel, m.User} },
	page: func(ms []origin.Membership, next string) any {
		return origin.MembershipsPage{Memberships: ms, NextCursor: next}
	},
}

// partKey is a partition's key of a row: the whole listing's key, in the partition's order
// (memberships: user, then channel).
func partKey(key []string) []string {
	if len(key) == 2 {
		return []string{key[1], key[0]}
	}
	return key
}

// listRequest is a listing request, read and checked.
type listRequest struct {
	team   string
	key    []string // the whole listing's key, or a partition's (partKey order)
	limit  int
	stream bool
	// part: a partition, from bucket (after key in it) to end.
	part        bool
	bucket, end int
}

// parseList reads a listing request; bad is the error code of a request it refuses. A cursor
// carries its partition, so partition and partitions matter only on a partition's first
// request (they are checked on every one).
func parseList(r *http.Request, keys int) (req listRequest, bad string) {
	q := r.URL.Query()
	req = listRequest{team: r.PathValue("team"), limit: DefaultLimit}
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
	part, parts := 0, 0
	if v := q.Get("partitions"); v != "" {
		var err error
		parts, err = strconv.Atoi(v)
		if err == nil {
			part, err = strconv.Atoi(q.Get("partition"))
		}
		if err != nil || parts < 1 || parts > min(origin.MaxPartitions, buckets) || part < 0 || part >= parts {
			return req, "invalid_partition"
		}
	} else if q.Has("partition") {
		return req, "invalid_partition"
	}
	parts0, ok := decodeCursor(q.Get("cursor"))
	switch {
	case !ok:
		return req, "invalid_cursor"
	case len(parts0) == keys+2: // a partition's cursor: bucket, key…, end
		b, err1 := strconv.Atoi(parts0[0])
		e, err2 := strconv.Atoi(parts0[keys+1])
		if err1 != nil || err2 != nil || b < 0 || b >= e || e > buckets {
			return req, "invalid_cursor"
		}
		req.part, req.bucket, req.key, req.end = true, b, parts0[1:keys+1], e
	case len(parts0) == 0 && parts > 1: // a partition's first request
		req.part, req.bucket, req.key, req.end = true, part*buckets/parts, make([]string, keys), (part+1)*buckets/parts
	case len(parts0) == 0:
		req.key = make([]string, keys)
	case len(parts0) == keys: // the whole listing's cursor
		req.key = parts0
	default:
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
		out := &pageWriter[T]{l: l, w: w, req: &req, rc: http.NewResponseController(w), writeTimeout: s.cfg.WriteTimeout}
		// One row past the answer's last tells whether the last page is the listing's last.
		rows := req.limit
		if req.stream {
			rows = max(s.cfg.StreamRows/req.limit, 1) * req.limit
		}
		query, args := l.query, []any{req.team}
		if req.part {
			query, args = l.part, append(args, req.end, req.bucket)
		}
		for _, k := range req.key {
			args = append(args, k)
		}
		if err := out.copy(ctx, tx, query, append(args, rows+1), rows); err != nil {
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
	l   *listing[T]
	w   http.ResponseWriter
	req *listRequest
	rc  *http.ResponseController // bounds each write; flushes each line of a stream
	// writeTimeout is Config.WriteTimeout.
	writeTimeout time.Duration
	lines        int
	buf          bytes.Buffer
	enc          *json.Encoder // on buf
}

// copy reads the query's rows into pages of the request's limit, writing each full page when
// the row after it arrives (its cursor then is not the last), and stops after rows rows.
func (p *pageWriter[T]) copy(ctx context.Context, tx pgx.Tx, query string, args []any, rows int) error {
	res, err := tx.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer res.Close()
	limit := p.req.limit
	page := make([]T, 0, limit)
	var more []any // a partition's rows come with their bucket
	bucket := 0
	if p.req.part {
		more = []any{&bucket}
	}
	for n := 0; res.Next(); n++ {
		if len(page) == limit {
			if err := p.write(page, p.cursor(&page[limit-1], bucket)); err != nil {
				return err
			}
			if n == rows {
				return nil // the answer's bound: the row read is the next answer's first
			}
			page = page[:0]
		}
		page = append(page, *new(T))
		if err := p.l.scan(res, &page[len(page)-1], more...); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		return err
	}
	return p.write(page, "")
}

// cursor is the cursor after row: its key, and in a partition its bucket before and the
// partition's end after.
func (p *pageWriter[T]) cursor(row *T, bucket int) string {
	key := p.l.key(row)
	if !p.req.part {
		return encodeCursor(key)
	}
	return encodeCursor(append(append([]string{strconv.Itoa(bucket)}, partKey(key)...), strconv.Itoa(p.req.end)))
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
	// An edge that stops reading (a partition without a reset) must not hold the statement,
	// its snapshot and its connection for as long as TCP takes to give up.
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.writeTimeout))
	if !p.req.stream {
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

// decodeCursor reads a cursor's key parts; "" is none.
func decodeCursor(c string) ([]string, bool) {
	if c == "" {
		return nil, true
	}
	if len(c) > 4096 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, false
	}
	return strings.Split(string(b), "\x00"), true
}
