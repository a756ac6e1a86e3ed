package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// snapshotFlush is how much of a snapshot is buffered before it is written out.
const snapshotFlush = 256 << 10

// handleSnapshot answers GET /origin/v1/teams/{team}/snapshot: the whole team in one body,
// {"team","seq","users","channels","memberships"}, the way clients booted before lazy loading.
// weft does not use it; the boot scenario measures against it. Its reads are one REPEATABLE
// READ transaction, so the four parts are one snapshot of the database, and the seq read in it
// (the stream's last acknowledged) is at most what that snapshot reflects: only committed
// events are published. Rows are written as they are read, never held whole.
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	team := r.PathValue("team")
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		s.failed(w, r, err)
		return
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read-only: nothing to undo
	info, err := s.team(ctx, tx, team)
	if errors.Is(err, pgx.ErrNoRows) {
		writeError(w, http.StatusNotFound, "team_not_found", "")
		return
	}
	var head []byte
	if err == nil {
		head, err = json.Marshal(&info.Team)
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	sw := &snapshotWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout}
	sw.buf = append(sw.buf, `{"team":`...)
	sw.buf = append(sw.buf, head...)
	sw.buf = append(sw.buf, `,"seq":`...)
	sw.buf = strconv.AppendInt(sw.buf, info.Seq, 10)
	err = snapshotSection(ctx, tx, sw, `,"users":[`, usersListing, team)
	if err == nil {
		err = snapshotSection(ctx, tx, sw, `],"channels":[`, channelsListing, team)
	}
	if err == nil {
		err = snapshotSection(ctx, tx, sw, `],"memberships":[`, membershipsListing, team)
	}
	if err == nil {
		sw.buf = append(sw.buf, "]}\n"...)
		err = sw.flush(true)
	}
	if err != nil {
		if sw.wrote == 0 {
			s.failed(w, r, err)
			return
		}
		if ctx.Err() == nil {
			s.cfg.Logger.Warn("database, mid-snapshot", "path", r.URL.Path, "err", err)
		}
		panic(http.ErrAbortHandler) // a body cut short, not a complete wrong one
	}
}

// snapshotSection writes open and every row of a listing, comma-separated.
func snapshotSection[T any](ctx context.Context, tx pgx.Tx, sw *snapshotWriter, open string, l *listing[T], team string) error {
	sw.buf = append(sw.buf, open...)
	args := []any{team}
	for range l.keys {
		args = append(args, "") // before every key
	}
	rows, err := tx.Query(ctx, l.query, append(args, math.MaxInt64)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var row T
	for n := 0; rows.Next(); n++ {
		if err := l.scan(rows, &row); err != nil {
			return err
		}
		if n > 0 {
			sw.buf = append(sw.buf, ',')
		}
		b, err := json.Marshal(&row)
		if err != nil {
			return err
		}
		sw.buf = append(sw.buf, b...)
		if err := sw.flush(false); err != nil {
			return err
		}
	}
	return rows.Err()
}

type snapshotWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration // Config.WriteTimeout
	buf     []byte
	wrote   int
}

func (sw *snapshotWriter) flush(force bool) error {
	if !force && len(sw.buf) < snapshotFlush {
		return nil
	}
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	n, err := sw.w.Write(sw.buf)
	sw.wrote += n
	sw.buf = sw.buf[:0]
	return err
}
