package token

import (
	"crypto"
	"crypto/hmac"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// The assertion helpers.

func ok(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("unexpected error: %v", err)
	}
}

func equal[T any](tb testing.TB, got, want T, what string) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func isErr(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("error %v does not wrap %v", err, target)
	}
}

func truth(tb testing.TB, cond bool, format string, args ...any) {
	tb.Helper()
	if !cond {
		tb.Fatalf(format, args...)
	}
}

// Fixtures.

var testSecret = []byte("test-secret-0123456789abcdef")

func newKeys(tb testing.TB) *Keys {
	tb.Helper()
	k, err := New(testSecret)
	ok(tb, err)
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
