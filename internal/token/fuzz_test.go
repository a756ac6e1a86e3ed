package token

import (
	"crypto"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"
)

// FuzzVerify feeds Verify two tokens per input: raw as given, and header and claims signed with
// the right secret, which is what lets the fuzzer reach claim validation at all (it cannot forge
// a signature). Verify never panics, every refusal wraps ErrInvalid, and whatever it accepts
// names a team and a user within MaxIDLen, expires after now minus Leeway, and (for the signed
// one) declared HS256.
func FuzzVerify(f *testing.F) {
	k, err := New(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	issued, err := k.Issue("T1", "U1", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	const far = `,"exp":4102444800}` // 2100-01-01
	f.Add(issued, hs256Header, `{"sub":"U1","team":"T1"`+far)
	f.Add("", `{"alg":"none"}`, `{"sub":"U1","team":"T1"`+far)
	f.Add("a.b.c", `{"alg":"HS512"}`, `{"sub":"U1","team":"T1"`+far)
	f.Add("eyJhbGciOiJub25lIn0.e30.", `{"alg":"HS256","alg":"none"}`, `{"sub":"","team":"T1"`+far)
	f.Add(issued+".", hs256Header, `{"sub":"U1","team":"T1","exp":1}`)
	f.Add("", hs256Header, `{"sub":"U1","team":"T1","exp":1e300}`)
	f.Add("", hs256Header, `{"sub":"U1","team":"T1","exp":-1e300}`)
	f.Add("", hs256Header, `{"sub":"U1","team":"T1","exp":null}`)
	f.Add("", hs256Header, `{"sub":"U1","TEAM":"T1","team":null`+far)
	f.Add("", hs256Header, `{"sub":"U1","team":"T1","nbf":4102444800`+far)
	f.Fuzz(func(t *testing.T, raw, header, claims string) {
		check := func(tok string, signed bool) {
			before := time.Now()
			c, err := k.Verify(tok)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
				if c != (Claims{}) {
					t.Fatalf("claims %+v returned with error %v", c, err)
				}
				return
			}
			if c.Team == "" || c.User == "" || len(c.Team) > MaxIDLen || len(c.User) > MaxIDLen {
				t.Fatalf("accepted bad IDs: team %q user %q", c.Team, c.User)
			}
			if !c.Expires.After(before.Add(-Leeway)) {
				t.Fatalf("accepted a token that expired at %v (now %v)", c.Expires, before)
			}
			if signed {
				var h map[string]any
				if json.Unmarshal([]byte(header), &h) != nil || h["alg"] != "HS256" {
					t.Fatalf("accepted header %q", header)
				}
			}
		}
		check(raw, false)
		check(forge(crypto.SHA256, testSecret, header, claims), true)
	})
}

// FuzzVerifyFast holds the fast path to the parser: whatever verifyFast accepts, the parser
// accepts too, with the same claims. (The other way round is not required: the fast path
// leaves to the parser everything but the tokens Issue makes.)
func FuzzVerifyFast(f *testing.F) {
	k, err := New(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	issued, err := k.Issue("T1", "U1", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	const far = `,"exp":4102444800}`
	f.Add(issued, hs256Header, `{"sub":"U1","team":"T1"`+far)
	f.Add("", hs256Header, `{"sub":"U1","team":"T1","iat":1e999`+far)
	f.Add("", hs256Header, `{"sub":"U1","team":"T1","exp":1e308}`)
	f.Add("", hs256Header, `{"Sub":"U1","team":"T1"`+far)
	f.Add("", hs256Header, `{"sub":"U1","team":"T1","nbf":-0.5e-3`+far)
	f.Add("", `{"typ":"JWT","alg":"HS256"}`, `{"sub":"U1","team":"T1"`+far)
	f.Fuzz(func(t *testing.T, raw, header, claims string) {
		for _, tok := range []string{raw, forge(crypto.SHA256, testSecret, header, claims)} {
			fast, ok := k.verifyFast(tok)
			if !ok {
				continue
			}
			slow, err := k.verifyParsed(tok)
			if err != nil {
				t.Fatalf("the fast path accepted %q as %+v; the parser refuses it: %v", tok, fast, err)
			}
			if fast != slow {
				t.Fatalf("%q: the fast path read %+v, the parser %+v", tok, fast, slow)
			}
		}
	})
}

// FuzzParseClaims holds parseClaims to encoding/json: what it decodes, json.Unmarshal decodes
// too, into the same values.
func FuzzParseClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"U1","team":"T1","exp":4102444800,"iat":1}`,
		`{}`, `{"exp":-0}`, `{"exp":1.5e3,"nbf":2E-2}`, `{"x":"y","sub":"a"}`, `{"SUB":"a"}`,
		`{"exp":1e400}`, `{"iat":1e400}`, `{"sub":"a","sub":"b"}`, `{"exp":01}`, `{"exp":"1"}`,
		`{"sub":1}`, `{"team":"T1"}x`, `{"exp":1,}`, `{"sub":"\u0041"}`, `{ "sub":"a"}`,
	} {
		f.Add([]byte(s))
	}
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	f.Fuzz(func(t *testing.T, b []byte) {
		fast := newWireClaims()
		if !parseClaims(b, &fast) {
			return
		}
		std := newWireClaims()
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("parseClaims took %q; json refuses it: %v", b, err)
		}
		if fast.Sub != std.Sub || fast.Team != std.Team || !same(fast.Exp, std.Exp) || !same(fast.Nbf, std.Nbf) {
			t.Fatalf("%q: parseClaims read %+v, json %+v", b, fast, std)
		}
	})
}
