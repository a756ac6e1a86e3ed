package token

import (
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestKeySetRollsSecrets: a secret is rolled without dropping anyone. Verifiers that hold the
// old and the new secret take tokens of both; an issuer that puts the new one first issues
// tokens naming it (kid); once the old secret is removed, its tokens are refused and the new
// ones still verify. Tokens that name no key are verified by the secret with no ID only.
func TestKeySetRollsSecrets(t *testing.T) {
	oldS, newS := Secret{Key: []byte("old-secret-0123456789")}, Secret{ID: "2026-12", Key: []byte("new-secret-0123456789")}
	before, err := NewSet([]Secret{oldS})
	testkit.OK(t, err)
	during, err := NewSet([]Secret{oldS, newS}) // verifiers first
	testkit.OK(t, err)
	issuer, err := NewSet([]Secret{newS, oldS}) // then the issuer
	testkit.OK(t, err)
	after, err := NewSet([]Secret{newS})
	testkit.OK(t, err)

	oldTok, err := before.Issue("T1", "U1", time.Hour)
	testkit.OK(t, err)
	newTok, err := issuer.Issue("T1", "U1", time.Hour)
	testkit.OK(t, err)
	for name, tc := range map[string]struct {
		k    *Keys
		tok  string
		want bool
	}{
		"old token, old keys": {before, oldTok, true},
		"old token, both":     {during, oldTok, true},
		"new token, both":     {during, newTok, true},
		"new token, issuer's": {issuer, newTok, true},
		"new token, new only": {after, newTok, true},
		"old token, new only": {after, oldTok, false},
		"new token, old only": {before, newTok, false},
	} {
		_, err := tc.k.Verify(tc.tok)
		if (err == nil) != tc.want {
			t.Errorf("%s: %v, want accepted %v", name, err, tc.want)
		}
		if err != nil {
			testkit.IsErr(t, err, ErrSignature)
		}
		// The fast path agrees: it takes only what the parser takes.
		if _, ok := tc.k.verifyFast(tc.tok); ok != tc.want {
			t.Errorf("%s: fast path %v, want %v", name, ok, tc.want)
		}
	}
	// A kid that names a key of the set but signed with another is refused.
	forged := forge2(t, `{"alg":"HS256","kid":"2026-12","typ":"JWT"}`, oldS.Key)
	if _, err := during.Verify(forged); !errors.Is(err, ErrSignature) {
		t.Errorf("kid of the new key, signed with the old: %v", err)
	}
	if len(during.RoutingKeys()) != 2 || string(during.RoutingKey()) != string(during.RoutingKeys()[0]) {
		t.Error("routing keys: want one per secret, the signing one's first")
	}
}

func forge2(t *testing.T, header string, secret []byte) string {
	t.Helper()
	return forge(crypto.SHA256, secret, header, `{"sub":"U1","team":"T1","exp":4102444800}`)
}

func TestNewSetRefuses(t *testing.T) {
	good := []byte("a-secret-0123456789")
	for name, ss := range map[string][]Secret{
		"none":        nil,
		"short":       {{Key: []byte("short")}},
		"ID twice":    {{ID: "a", Key: good}, {ID: "a", Key: good}},
		"two without": {{Key: good}, {Key: good}},
		"bad ID":      {{ID: `a"b`, Key: good}},
		"long ID":     {{ID: strings.Repeat("a", MaxKeyIDLen+1), Key: good}},
	} {
		if _, err := NewSet(ss); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "secrets")
		testkit.OK(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	ss, err := ReadSecrets(write("# rolled 2026-12\n2026-12 new-secret-0123456789\n\n  old-secret-0123456789  \n"))
	testkit.OK(t, err)
	testkit.Equal(t, len(ss), 2, "secrets")
	testkit.Equal(t, ss[0].ID+"="+string(ss[0].Key), "2026-12=new-secret-0123456789", "first")
	testkit.Equal(t, ss[1].ID+"="+string(ss[1].Key), "=old-secret-0123456789", "second")
	for name, body := range map[string]string{"empty": "# nothing\n", "three fields": "a b c\n"} {
		_, err := ReadSecrets(write(body))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "b c") {
			t.Errorf("%s: the error quotes the line: %v", name, err)
		}
	}
	if _, err := Load("x-secret-0123456789", write("a-secret-0123456789")); err == nil {
		t.Error("Load took a secret and a file")
	}
	if _, err := Load("", ""); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Load of nothing: %v", err)
	}
	k, err := Load("", write("k1 file-secret-0123456789\n"))
	testkit.OK(t, err)
	tok, err := k.Issue("T1", "U1", time.Hour)
	testkit.OK(t, err)
	_, err = k.Verify(tok)
	testkit.OK(t, err)
}
