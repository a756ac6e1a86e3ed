package edge

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"strconv"
)

// cursors seals the paging cursors the edge hands out (users.list, channels.members,
// users.channels). The store's cursors are the last ID a page returned, in the clear: a caller
// could write one for any ID and learn from the answer whether it exists, a private channel's
// included. Sealed, a cursor is opaque and good only for the page it continues: AES-256-GCM
// over the position, bound (as associated data) to the team, the caller, the method and what
// it pages (the channel or user). Anything else, forged, foreign or damaged, is the same
// invalid_request whatever it names.
//
// The key is derived from the token secrets (token.Keys.Derived), which every edge shares: a
// cursor still works after its team moved to another edge. While a secret rolls, cursors
// sealed under any of them open.
type cursors struct {
	aeads []cipher.AEAD // the first seals
}

// cursorLabel names the cursors' key among the keys derived from the token secrets.
const cursorLabel = "weft cursors v1"

func newCursors(keys [][]byte) (*cursors, error) {
	cs := &cursors{}
	for _, k := range keys {
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			return nil, err
		}
		cs.aeads = append(cs.aeads, a)
	}
	return cs, nil
}

// cursorScope is what a cursor continues: a method's pages for one caller of one team, over
// one subject (the channel of channels.members, the user of users.channels; none for
// users.list).
type cursorScope struct {
	team, caller, method, subject string
}

// ad encodes the scope as associated data, each field length-prefixed.
func (sc cursorScope) ad() []byte {
	var b []byte
	for _, f := range [...]string{sc.team, sc.caller, sc.method, sc.subject} {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
	}
	return b
}

// seal returns the cursor for position pos in scope; "" (the end) stays "".
func (cs *cursors) seal(sc cursorScope, pos string) string {
	if pos == "" {
		return ""
	}
	a := cs.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(pos)+a.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, []byte(pos), sc.ad()))
}

// open returns the position of cursor in scope: "" for the first page, ok false for a cursor
// this scope was not handed.
func (cs *cursors) open(sc cursorScope, cursor string) (pos string, ok bool) {
	if cursor == "" {
		return "", true
	}
	if len(cursor) > 1024 { // a sealed position is an ID (at most 255 bytes) and 28 more
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", false
	}
	ad := sc.ad()
	for _, a := range cs.aeads {
		if len(b) < a.NonceSize()+a.Overhead() {
			return "", false
		}
		if p, err := a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], ad); err == nil && len(p) > 0 {
			return string(p), true
		}
	}
	return "", false
}
