package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// hs256 is HS256 verification under one secret, for the handshake hot path. The library's own
// HS256 builds a fresh HMAC per call: seven allocations and the two key-block compressions every
// time. This one keeps keyed HMACs in a pool; after its first use an HMAC's Reset restores the
// precomputed key state.
//
// It is not a registered method: Keys' key func swaps it in for jwt.SigningMethodHS256 on a token
// the parser has already confined to HS256, so the algorithm is the same, only cheaper.
type hs256 struct {
	pool sync.Pool // of *macState, keyed with the secret
}

type macState struct {
	mac    hash.Hash
	in     []byte // signing input copied here: the hash takes []byte, the parser hands us a string
	sum    [sha256.Size]byte
	claims []byte // the claims decoded, by verifyFast
}

func newHS256(secret []byte) *hs256 {
	m := &hs256{}
	m.pool.New = func() any { return &macState{mac: hmac.New(sha256.New, secret)} }
	return m
}

var errVerifyOnly = errors.New("token: hs256 verifier cannot sign")

func (m *hs256) Alg() string { return jwt.SigningMethodHS256.Alg() }

// Sign is never called: Issue signs with jwt.SigningMethodHS256.
func (m *hs256) Sign(string, any) ([]byte, error) { return nil, errVerifyOnly }

// Verify ignores key: the pooled HMACs are already keyed with the secret the key func returns.
func (m *hs256) Verify(signingString string, sig []byte, _ any) error {
	s := m.pool.Get().(*macState)
	defer m.pool.Put(s)
	s.mac.Reset()
	s.in = append(s.in[:0], signingString...) // bounded by maxTokenLen
	s.mac.Write(s.in)
	if !hmac.Equal(sig, s.mac.Sum(s.sum[:0])) {
		return jwt.ErrSignatureInvalid
	}
	return nil
}
