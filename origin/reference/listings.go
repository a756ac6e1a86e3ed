package reference

import (
	"net/http"
	"strconv"

	"github.com/weft-edge/weft/origin"
)

// The three listings in every form of docs/origin.md: a page per request (the first contract),
// a stream of pages in one answer (stream=1), and a partition of the listing
// (partition=i&partitions=n), streamed or not. A partition is a range of the stable indices
// the cursors already are positions in (users and memberships by user, channels by channel),
// so the partitions of a listing are disjoint and cover it, and the work per row is the same
// in every form: a stream is the pages the edge would have asked for, written back to back,
// each under the read lock of its own page only.

// listing is one listing's shape.
type listing struct {
	kind byte   // cursor kind
	n    int    // positions in a cursor
	key  string // the array's key in a page
	// page appends up to limit rows from pos, below end, and returns the next position
	// (next[0] == -1 after the last row).
	page func(st *teamState, b []byte, pos []int, end, limit int) ([]byte, [2]int)
	// span is where partition i of n starts (its first position) and ends.
	span func(st *teamState, i, n int) (pos []int, end int)
	// whole is the end of the whole listing.
	whole int
}

// split is partition i of n of [0, total).
func split(total, i, n int) (start, end int) { return i * total / n, (i + 1) * total / n }

var usersListing = &listing{kind: cursorUsers, n: 1, key: "users", whole: allUsers,
	page: func(st *teamState, b []byte, pos []int, end, limit int) ([]byte, [2]int) {
		b, next := st.appendUsers(b, pos[0], end, limit, false)
		return b, [2]int{next}
	},
	span: func(st *teamState, i, n int) ([]int, int) {
		start, end := split(st.w.size.Users, i, n)
		return []int{start}, end
	},
}

var channelsListing = &listing{kind: cursorChannels, n: 1, key: "channels", whole: allChannels,
	page: func(st *teamState, b []byte, pos []int, end, limit int) ([]byte, [2]int) {
		b, next := st.appendChannels(b, pos[0], end, limit, false)
		return b, [2]int{next}
	},
	// The world's channels, not the current count: a partition's bounds must not move while
	// the team changes, or partitions asked for before and after a creation would overlap or
	// leave a gap. Created channels have the indices after the world's, in the last partition.
	span: func(st *teamState, i, n int) ([]int, int) {
		start, end := split(st.w.size.Channels, i, n)
		if i == n-1 {
			end = allChannels
		}
		return []int{start}, end
	},
}

var membershipsListing = &listing{kind: cursorMemberships, n: 2, key: "memberships", whole: allUsers,
	page: func(st *teamState, b []byte, pos []int, end, limit int) ([]byte, [2]int) {
		b, nu, nc := st.appendMemberships(b, pos[0], pos[1], end, limit, false)
		return b, [2]int{nu, nc}
	},
	span: func(st *teamState, i, n int) ([]int, int) {
		start, end := split(st.w.size.Users, i, n)
		return []int{start, 0}, end
	},
}

// listRequest is a listing request, read and checked.
type listRequest struct {
	st     *teamState
	limit  int
	pos    []int
	end    int  // where the walk ends: the listing's or its partition's end
	part   bool // a partition: its cursors carry end
	stream bool
}

// listParams reads a listing request, answering the error itself. A cursor carries its
// partition, so partition and partitions matter only on a partition's first request (they
// are checked on every one).
func (s *Server) listParams(w http.ResponseWriter, r *http.Request, l *listing) (listRequest, bool) {
	req := listRequest{st: s.teamFromPath(w, r)}
	if req.st == nil {
		return req, false
	}
	q := r.URL.Query()
	req.limit = min(defaultPageLimit, s.cfg.MaxPageLimit)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "invalid_limit")
			return req, false
		}
		req.limit = min(n, s.cfg.MaxPageLimit)
	}
	switch q.Get("stream") {
	case "", "0":
	case "1":
		req.stream = true
	default:
		writeError(w, http.StatusBadRequest, "invalid_request")
		return req, false
	}
	part, parts := 0, 0
	if v := q.Get("partitions"); v != "" {
		var err error
		parts, err = strconv.Atoi(v)
		if err == nil {
			part, err = strconv.Atoi(q.Get("partition"))
		}
		if err != nil || parts < 1 || parts > maxAskedPartitions || part < 0 || part >= parts {
			writeError(w, http.StatusBadRequest, "invalid_partition")
			return req, false
		}
	} else if q.Has("partition") {
		writeError(w, http.StatusBadRequest, "invalid_partition")
		return req, false
	}
	pos, end, err := decodeCursorEnd(l.kind, l.n, q.Get("cursor"))
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_cursor")
		return req, false
	case end >= 0: // a partition's cursor
		req.pos, req.end, req.part = pos, end, true
	case q.Get("cursor") == "" && parts > 1: // a partition's first request
		req.pos, req.end = l.span(req.st, part, parts)
		req.part = true
	default: // the whole listing (partitions=1 is the whole listing too)
		req.pos, req.end = pos, l.whole
	}
	return req, true
}

// handleList answers a listing request: one page {"<key>":[…],"next_cursor":…}, or with
// stream=1 every page from the cursor on, one per line, flushed as each is written.
func (s *Server) handleList(l *listing) http.HandlerFunc {
	open := `{"` + l.key + `":[`
	return func(w http.ResponseWriter, r *http.Request) {
		req, ok := s.listParams(w, r, l)
		if !ok {
			return
		}
		b := s.getBuf()
		defer s.putBuf(b)
		if !req.stream {
			buf, next := l.page(req.st, append(*b, open...), req.pos, req.end, req.limit)
			*b = req.endPage(buf, l, next)
			writeJSON(w, *b)
			return
		}
		w.Header().Set("Content-Type", origin.StreamType)
		rc := http.NewResponseController(w)
		buf, pos := *b, req.pos
		defer func() { *b = buf[:0] }()
		for pages := 1; r.Context().Err() == nil; pages++ {
			var next [2]int
			buf, next = l.page(req.st, append(buf[:0], open...), pos, req.end, req.limit)
			buf = append(req.endPage(buf, l, next), '\n')
			if _, err := w.Write(buf); err != nil {
				return // the edge went away
			}
			_ = rc.Flush()
			if next[0] < 0 || pages == s.cfg.Listings.StreamPages {
				return
			}
			pos = next[:l.n]
		}
	}
}

// endPage closes the array and writes next_cursor: "" when next[0] is -1 (the end); a
// partition's cursor carries the partition's end.
func (req *listRequest) endPage(b []byte, l *listing, next [2]int) []byte {
	b = append(b, `],"next_cursor":`...)
	switch {
	case next[0] < 0:
		b = append(b, `""`...)
	case req.part:
		b = appendString(b, encodeCursor(l.kind, append(next[:l.n:l.n], req.end)...))
	default:
		b = appendString(b, encodeCursor(l.kind, next[:l.n]...))
	}
	return append(b, '}')
}

// appendListings writes the team answer's announcement of the listings' newer forms:
// ,"listings":{"stream":true,"partitions":{"users":1,"channels":1,"memberships":8}}. The
// partitions follow the team's size, one per PartitionRows rows up to MaxPartitions.
func (s *Server) appendListings(st *teamState, b []byte) []byte {
	l := s.cfg.Listings
	if l.Plain {
		return b
	}
	st.mu.RLock()
	chans, members := len(st.counts)-len(st.deleted), 0
	for _, n := range st.counts {
		members += int(n)
	}
	st.mu.RUnlock()
	parts := func(rows int) int64 {
		return int64(min(max((rows+l.PartitionRows-1)/l.PartitionRows, 1), l.MaxPartitions))
	}
	b = append(b, `,"listings":{"stream":`...)
	b = appendBool(b, !l.NoStream)
	b = append(b, `,"partitions":{"users":`...)
	b = strconv.AppendInt(b, parts(st.w.size.Users), 10)
	b = append(b, `,"channels":`...)
	b = strconv.AppendInt(b, parts(chans), 10)
	b = append(b, `,"memberships":`...)
	b = strconv.AppendInt(b, parts(members), 10)
	return append(b, "}}"...)
}
