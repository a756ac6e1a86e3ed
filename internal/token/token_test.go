package token

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/weft-edge/weft/internal/testkit"
)

func TestNewRefusesShortSecret(t *testing.T) {
	_, err := New([]byte("fifteen-bytes!!"))
	testkit.True(t, err != nil, "a 15-byte secret was accepted")
	testkit.True(t, !strings.Contains(err.Error(), "fifteen"), "error %q leaks the secret", err)
	_, err = New(nil)
	testkit.True(t, err != nil, "a nil secret was accepted")
	_, err = New([]byte(DevSecret))
	testkit.OK(t, err)
}

func TestNewCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	k, err := New(secret)
	testkit.OK(t, err)
	tok, err := k.Issue("T1", "U1", time.Hour)
	testkit.OK(t, err)
	secret[0] ^= 0xff
	_, err = k.Verify(tok)
	testkit.OK(t, err)
}

func TestRoundTrip(t *testing.T) {
	k := newKeys(t)
	before := time.Now()
	tok, err := k.Issue("T1", "U1", time.Hour)
	testkit.OK(t, err)
	c, err := k.Verify(tok)
	testkit.OK(t, err)
	testkit.Equal(t, c.Team, "T1", "team")
	testkit.Equal(t, c.User, "U1", "user")
	// exp has whole-second precision, so it may fall up to a second short of before+ttl.
	testkit.True(t, !c.Expires.Before(before.Add(time.Hour-time.Second)) && !c.Expires.After(time.Now().Add(time.Hour)),
		"expires %v, want about an hour after %v", c.Expires, before)

	long := strings.Repeat("x", MaxIDLen)
	tok, err = k.Issue(long, long, time.Minute)
	testkit.OK(t, err)
	c, err = k.Verify(tok)
	testkit.OK(t, err)
	testkit.Equal(t, c, Claims{Team: long, User: long, Expires: c.Expires}, "claims with longest IDs")
}

func TestIssueRefuses(t *testing.T) {
	k := newKeys(t)
	long := strings.Repeat("x", MaxIDLen+1)
	for _, tc := range []struct {
		name, team, user string
		ttl              time.Duration
	}{
		{"empty team", "", "U1", time.Hour},
		{"empty user", "T1", "", time.Hour},
		{"long team", long, "U1", time.Hour},
		{"long user", "T1", long, time.Hour},
		{"zero ttl", "T1", "U1", 0},
		{"negative ttl", "T1", "U1", -time.Hour},
		{"sub-second ttl", "T1", "U1", time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := k.Issue(tc.team, tc.user, tc.ttl)
			testkit.True(t, err != nil, "issued a token for team %q user %q ttl %v", tc.team, tc.user, tc.ttl)
		})
	}
}

func TestVerifyAcceptsWithinLeeway(t *testing.T) {
	k := newKeys(t)
	exp := time.Now().Add(-2 * time.Second).Unix()
	c, err := k.Verify(forge(crypto.SHA256, testSecret, hs256Header, fmt.Sprintf(`{"sub":"U1","team":"T1","exp":%d}`, exp)))
	testkit.OK(t, err)
	testkit.Equal(t, c.Expires.Unix(), exp, "expires")
}

func TestVerifyRejects(t *testing.T) {
	k := newKeys(t)
	now := time.Now()
	exp := now.Add(time.Hour).Unix()
	claims := func(s string) string { return fmt.Sprintf(s, exp) }
	good := claims(`{"sub":"U1","team":"T1","exp":%d}`)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	testkit.OK(t, err)
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256,
		jwt.MapClaims{"sub": "U1", "team": "T1", "exp": exp}).SignedString(rsaKey)
	testkit.OK(t, err)
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512,
		jwt.MapClaims{"sub": "U1", "team": "T1", "exp": exp}).SignedString(testSecret)
	testkit.OK(t, err)
	issued, err := k.Issue("T1", "U1", time.Hour)
	testkit.OK(t, err)
	parts := strings.Split(issued, ".")
	// Same signature, claims swapped for another team: the classic tamper.
	tamperedTeam := forge(crypto.SHA256, testSecret, hs256Header, claims(`{"sub":"U1","team":"T2","exp":%d}`))
	tamperedTeam = strings.Join([]string{parts[0], strings.Split(tamperedTeam, ".")[1], parts[2]}, ".")

	for _, tc := range []struct {
		name, tok string
		want      error
	}{
		{"expired", forge(crypto.SHA256, testSecret, hs256Header,
			fmt.Sprintf(`{"sub":"U1","team":"T1","exp":%d}`, now.Add(-time.Minute).Unix())), ErrExpired},
		{"expired long ago", forge(crypto.SHA256, testSecret, hs256Header, `{"sub":"U1","team":"T1","exp":1}`), ErrExpired},
		{"wrong secret", forge(crypto.SHA256, []byte("another-secret-0123456789"), hs256Header, good), ErrSignature},
		{"tampered claims", tamperedTeam, ErrSignature},
		{"truncated signature", issued[:len(issued)-4], ErrSignature},
		{"no signature", parts[0] + "." + parts[1] + ".", ErrSignature},
		{"alg none, HMAC'd with the secret", forge(crypto.SHA256, testSecret, `{"alg":"none"}`, good), ErrSignature},
		{"alg none, unsigned", strings.Join([]string{b64(`{"alg":"none","typ":"JWT"}`), b64(good), ""}, "."), ErrSignature},
		{"alg None", forge(crypto.SHA256, testSecret, `{"alg":"None"}`, good), ErrSignature},
		{"alg missing", forge(crypto.SHA256, testSecret, `{"typ":"JWT"}`, good), ErrSignature},
		{"alg unknown", forge(crypto.SHA256, testSecret, `{"alg":"HS257"}`, good), ErrSignature},
		{"alg not a string", forge(crypto.SHA256, testSecret, `{"alg":["HS256"]}`, good), ErrSignature},
		{"alg HS512, HS256 signature", forge(crypto.SHA256, testSecret, `{"alg":"HS512"}`, good), ErrSignature},
		{"alg HS512, properly signed", hs512, ErrSignature},
		{"alg RS256, HMAC'd with the secret", forge(crypto.SHA256, testSecret, `{"alg":"RS256"}`, good), ErrSignature},
		{"alg RS256, properly signed", rs256, ErrSignature},
		{"missing team", forge(crypto.SHA256, testSecret, hs256Header, claims(`{"sub":"U1","exp":%d}`)), ErrClaims},
		{"missing sub", forge(crypto.SHA256, testSecret, hs256Header, claims(`{"team":"T1","exp":%d}`)), ErrClaims},
		{"empty team", forge(crypto.SHA256, testSecret, hs256Header, claims(`{"sub":"U1","team":"","exp":%d}`)), ErrClaims},
		{"empty sub", forge(crypto.SHA256, testSecret, hs256Header, claims(`{"sub":"","team":"T1","exp":%d}`)), ErrClaims},
		{"long team", forge(crypto.SHA256, testSecret, hs256Header,
			claims(`{"sub":"U1","team":"`+strings.Repeat("t", MaxIDLen+1)+`","exp":%d}`)), ErrClaims},
		{"missing exp", forge(crypto.SHA256, testSecret, hs256Header, `{"sub":"U1","team":"T1"}`), ErrClaims},
		{"null exp", forge(crypto.SHA256, testSecret, hs256Header, `{"sub":"U1","team":"T1","exp":null}`), ErrClaims},
		{"not yet valid", forge(crypto.SHA256, testSecret, hs256Header,
			fmt.Sprintf(`{"sub":"U1","team":"T1","exp":%d,"nbf":%d}`, exp, now.Add(time.Minute).Unix())), ErrClaims},
		{"team not a string", forge(crypto.SHA256, testSecret, hs256Header, claims(`{"sub":"U1","team":7,"exp":%d}`)), ErrMalformed},
		{"exp not a number", forge(crypto.SHA256, testSecret, hs256Header, `{"sub":"U1","team":"T1","exp":"soon"}`), ErrMalformed},
		{"claims not an object", forge(crypto.SHA256, testSecret, hs256Header, `["U1","T1"]`), ErrMalformed},
		{"header not JSON", forge(crypto.SHA256, testSecret, `alg=HS256`, good), ErrMalformed},
		{"empty", "", ErrMalformed},
		{"one segment", "garbage", ErrMalformed},
		{"two segments", parts[0] + "." + parts[1], ErrMalformed},
		{"four segments", issued + "." + parts[2], ErrMalformed},
		{"not base64", "!!!.@@@.###", ErrMalformed},
		{"padded base64", parts[0] + "==." + parts[1] + "." + parts[2], ErrMalformed},
		{"huge", strings.Repeat("a", maxTokenLen) + "." + parts[1] + "." + parts[2], ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := k.Verify(tc.tok)
			testkit.True(t, err != nil, "accepted: %+v", c)
			testkit.IsErr(t, err, ErrInvalid)
			testkit.IsErr(t, err, tc.want)
			testkit.Equal(t, c, Claims{}, "claims returned with an error")
			testkit.True(t, !strings.Contains(err.Error(), string(testSecret)), "error %q leaks the secret", err)
			var jerr error = jwt.ErrTokenMalformed
			testkit.True(t, !errors.Is(err, jerr), "error %v exposes a jwt sentinel", err)
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestVerifyConcurrent shares one Keys between goroutines; run it with -race.
func TestVerifyConcurrent(t *testing.T) {
	k := newKeys(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			team, user := fmt.Sprintf("T%d", i), fmt.Sprintf("U%d", i)
			for range 50 {
				tok, err := k.Issue(team, user, time.Minute)
				if err == nil {
					var c Claims
					if c, err = k.Verify(tok); err == nil && (c.Team != team || c.User != user) {
						err = fmt.Errorf("got %+v for %s/%s", c, team, user)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		testkit.OK(t, err)
	}
}

func BenchmarkVerify(b *testing.B) {
	k := newKeys(b)
	tok, err := k.Issue("T0123456789", "U0123456789", time.Hour)
	testkit.OK(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is a connection storm: every core verifying at once, sharing one Keys.
func BenchmarkVerifyParallel(b *testing.B) {
	k := newKeys(b)
	tok, err := k.Issue("T0123456789", "U0123456789", time.Hour)
	testkit.OK(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyRejectGarbage is the cost of turning away a client that sends junk.
func BenchmarkVerifyRejectGarbage(b *testing.B) {
	k := newKeys(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify("not-a-token"); err == nil {
			b.Fatal("accepted garbage")
		}
	}
}

func TestIDsCannotReachOtherSubjects(t *testing.T) {
	k, err := New([]byte(DevSecret))
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"T1.x", "*", ">", "T 1", "T1\n"} {
		if _, err := k.Issue(team, "U1", time.Hour); err == nil {
			t.Errorf("issued a token for team %q", team)
		}
	}
}

// BenchmarkVerifyCold verifies with the caches cold, as a proxy that sets up a connection now
// and then does: 32 MiB are walked between verifications, outside the timer.
func BenchmarkVerifyCold(b *testing.B) {
	k := newKeys(b)
	tok, err := k.Issue("T0123456789", "U0123456789", time.Hour)
	testkit.OK(b, err)
	junk := make([]byte, 32<<20)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := 0; i < len(junk); i += 64 {
			junk[i]++
		}
		b.StartTimer()
		if _, err := k.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyFastPath: the tokens Issue makes take the fast path and read as the parser reads
// them; a token it does not take (the same header, members in another order) is still
// verified, by the parser.
func TestVerifyFastPath(t *testing.T) {
	k := newKeys(t)
	issued, err := k.Issue("T1", "U1", time.Hour)
	testkit.OK(t, err)
	fast, ok := k.verifyFast(issued)
	testkit.True(t, ok, "an issued token did not take the fast path")
	slow, err := k.verifyParsed(issued)
	testkit.OK(t, err)
	testkit.Equal(t, fast, slow, "fast and parsed claims")

	exp := time.Now().Add(time.Hour).Unix()
	other := forge(crypto.SHA256, testSecret, `{"typ":"JWT","alg":"HS256"}`, fmt.Sprintf(`{"team":"T1", "sub":"U1","exp":%d}`, exp))
	_, ok = k.verifyFast(other)
	testkit.True(t, !ok, "the fast path took a header it does not know")
	c, err := k.Verify(other)
	testkit.OK(t, err)
	testkit.Equal(t, c, Claims{Team: "T1", User: "U1", Expires: time.Unix(exp, 0)}, "claims")
}
