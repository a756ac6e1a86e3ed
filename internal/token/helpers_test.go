package token

import (
	"crypto"
	"crypto/hmac"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// Fixtures.

var testSecret = []byte("test-secret-0123456789abcdef")

func newKeys(tb testing.TB) *Keys {
	tb.Helper()
	k, err := New(testSecret)
	testkit.OK(tb, err)
	return k
}

// forge builds a token from raw header and claims JSON, signed with HMAC over hash and secret,
// whatever the header claims the algorithm is: the tool for tampering tests.
func forge(hash crypto.Hash, secret []byte, header, claims string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(hash.New, secret)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

const hs256Header = `{"alg":"HS256","typ":"JWT"}`
