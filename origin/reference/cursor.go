package reference

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Cursors are opaque to clients: base64url of a kind letter and positions in base 36.
//
//	users, channels: "u<index>", "c<index>"      the next object index
//	memberships:     "m<user>.<channel>"         the next row: user index, channel index
//
// Positions are indices, not offsets into a list, so a cursor stays valid while the team
// changes between pages: a page never repeats or skips an object that existed throughout.
//
// A cursor of a partition (docs/origin.md, "Fewer round trips") has one more number, the index
// its partition ends at ("u<index>.<end>", "m<user>.<channel>.<end user>"): the cursor carries
// the partition, so the partition's bounds are computed once, at its first page, and stay put
// while channels are created.

const (
	cursorUsers       = 'u'
	cursorChannels    = 'c'
	cursorMemberships = 'm'
)

// cursorMaxLen bounds the input before decoding; real cursors are under 20 characters.
const cursorMaxLen = 64

var errBadCursor = errors.New("origin: invalid cursor")

func encodeCursor(kind byte, pos ...int) string {
	b := []byte{kind}
	for i, p := range pos {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(p), 36)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the n positions of a cursor of kind. An empty cursor is the start.
func decodeCursor(kind byte, n int, s string) ([]int, error) {
	pos, end, err := decodeCursorEnd(kind, n, s)
	if err == nil && end >= 0 {
		return nil, errBadCursor
	}
	return pos, err
}

// decodeCursorEnd returns the n positions of a cursor of kind and the end of its partition, -1
// for a cursor of the whole listing. An empty cursor is the start of the whole listing.
func decodeCursorEnd(kind byte, n int, s string) (pos []int, end int, err error) {
	pos = make([]int, n)
	if s == "" {
		return pos, -1, nil
	}
	if len(s) > cursorMaxLen {
		return nil, 0, errBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 2 || raw[0] != kind {
		return nil, 0, errBadCursor
	}
	parts := strings.Split(string(raw[1:]), ".")
	if len(parts) != n && len(parts) != n+1 {
		return nil, 0, errBadCursor
	}
	end = -1
	for i, p := range parts {
		// Positions fit 31 bits: object indices are below 36^5.
		v, err := strconv.ParseUint(p, 36, 31)
		if err != nil || p != strconv.FormatUint(v, 36) { // one spelling per position
			return nil, 0, errBadCursor
		}
		if i < n {
			pos[i] = int(v)
		} else {
			end = int(v)
		}
	}
	return pos, end, nil
}
