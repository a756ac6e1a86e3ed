// Package routesig signs the routing headers a proxy adds to a request it forwards to an edge
// (protocol.HeaderExcluded, protocol.HeaderRegion), so that an edge acts on them only when a
// proxy sent them. They steer what an edge does for a team: Weft-Excluded names the edges a
// proxy found down, and an edge takes a team it does not own when the owner is among them; a
// client that talks to an edge directly and names the owner would have the edge serve a team
// it does not own beside the owner. The signature (protocol.HeaderRouted) is an HMAC-SHA256,
// under a key proxies and edges share, over the request's time, path, client token and the
// routing headers' values: a signature lifted from one request does nothing for another
// client or path, and expires after MaxSkew.
//
// The key is derived from the token secret (token.Keys.RoutingKey) that proxies and edges
// already share: whoever holds it can mint any client's token, so it proves nothing less.
package routesig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxSkew bounds the difference between a signature's time and the edge's clock, either way:
// clock skew between hosts, plus the time a request takes from proxy to edge.
const MaxSkew = 30 * time.Second

// version prefixes every signature, so the scheme can change without ambiguity.
const version = "v1"

// Errors Verify returns; each says why an edge ignored a request's routing headers.
var (
	ErrMissing   = errors.New("routesig: routing headers without a signature")
	ErrMalformed = errors.New("routesig: malformed signature")
	ErrStale     = errors.New("routesig: signature too old or from the future")
	ErrBad       = errors.New("routesig: bad signature")
)

// Route is what a proxy says of a request it routed.
type Route struct {
	Path     string // the request's path
	Token    string // the client's token, as the proxy verified it
	Excluded string // protocol.HeaderExcluded's value ("" when none)
	Region   string // protocol.HeaderRegion's value
}

// Signer signs under one key and verifies under it and any others (the keys of a secret being
// rolled: token.Keys.RoutingKeys). It is safe for concurrent use.
type Signer struct {
	macs []*sync.Pool // of hash.Hash keyed with each key; the first signs
}

// New returns a Signer that signs with key and verifies with key and more (each at least 32
// bytes: they are derived keys, see the package doc).
func New(key []byte, more ...[]byte) (*Signer, error) {
	s := &Signer{}
	for _, k := range append([][]byte{key}, more...) {
		if len(k) < 32 {
			return nil, errors.New("routesig: key shorter than 32 bytes")
		}
		k := append([]byte(nil), k...)
		s.macs = append(s.macs, &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }})
	}
	return s, nil
}

// Sign returns the signature of rt at now, for protocol.HeaderRouted.
func (s *Signer) Sign(now time.Time, rt Route) string {
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	return version + "." + ms + "." + base64.RawURLEncoding.EncodeToString(s.sum(s.macs[0], ms, rt))
}

// Verify checks sig against rt at now.
func (s *Signer) Verify(sig string, now time.Time, rt Route) error {
	if sig == "" {
		return ErrMissing
	}
	v, rest, ok := strings.Cut(sig, ".")
	if !ok || v != version {
		return ErrMalformed
	}
	ms, mac, ok := strings.Cut(rest, ".")
	if !ok || len(ms) == 0 || len(ms) > 19 || len(mac) != 43 { // 43: 32 bytes, raw base64url
		return ErrMalformed
	}
	at, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || at < 0 || strconv.FormatInt(at, 10) != ms { // one spelling of each time
		return ErrMalformed
	}
	var got [sha256.Size]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(got[:], []byte(mac)); err != nil || n != len(got) {
		return ErrMalformed
	}
	if d := now.Sub(time.UnixMilli(at)); d > MaxSkew || d < -MaxSkew {
		return ErrStale
	}
	for _, p := range s.macs {
		if hmac.Equal(got[:], s.sum(p, ms, rt)) {
			return nil
		}
	}
	return ErrBad
}

// sum is the HMAC of the signed fields, each length-prefixed so that no two field lists
// share an encoding.
func (s *Signer) sum(macs *sync.Pool, ms string, rt Route) []byte {
	m := macs.Get().(hash.Hash)
	defer macs.Put(m)
	m.Reset()
	var n [20]byte
	for _, f := range [...]string{version, ms, rt.Path, rt.Token, rt.Excluded, rt.Region} {
		m.Write(strconv.AppendInt(n[:0], int64(len(f)), 10))
		m.Write([]byte{':'})
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}
