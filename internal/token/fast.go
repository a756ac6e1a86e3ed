package token

import (
	"crypto/hmac"
	"encoding/base64"
	"math"
	"strings"
	"time"
)

// headerSegment is the header Issue writes under the key with ID id, as golang-jwt encodes it
// (a map: its keys sorted), base64url-encoded.
func headerSegment(id string) string {
	h := `{"alg":"HS256","typ":"JWT"}`
	if id != "" {
		h = `{"alg":"HS256","kid":"` + id + `","typ":"JWT"}` // id needs no escaping (NewSet)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(h))
}

// verifyFast accepts tok when it is a token as Issue makes them: that header byte for byte, a
// good HS256 signature, and claims that pass every check Verify's parser makes. Anything else
// (ok false) goes to the parser, which accepts it or says why not: this path only ever accepts,
// never refuses, so it cannot refuse what the parser would accept or give another reason.
// FuzzVerifyFast holds it to accepting nothing the parser refuses, with the same claims.
//
// It exists for the handshake's latency: a proxy that sets up a connection now and then runs
// the parser's code cold, ~20 µs for what takes ~3 µs warm (BenchmarkVerifyCold), most of it
// decoding the header into a map and the parser's own machinery; here the header is one
// comparison and the claims a scan of the few shapes Issue writes (parseClaims).
func (k *Keys) verifyFast(tok string) (c Claims, ok bool) {
	h, rest, found := strings.Cut(tok, ".")
	if !found {
		return Claims{}, false
	}
	var sk *secretKey
	for _, c := range k.secrets {
		if h == c.header {
			sk = c
			break
		}
	}
	if sk == nil {
		return Claims{}, false
	}
	payload, sig, found := strings.Cut(rest, ".")
	if !found || len(sig) != 43 || len(payload) > maxTokenLen { // 43: a 32-byte HMAC in raw base64url
		return Claims{}, false
	}
	s := sk.hs256.pool.Get().(*macState)
	defer sk.hs256.pool.Put(s)
	// The signature, decoded as the parser decodes it (raw base64url, not strict).
	s.in = append(s.in[:0], sig...)
	var want [32]byte
	if n, err := base64.RawURLEncoding.Decode(want[:], s.in); err != nil || n != len(want) {
		return Claims{}, false
	}
	s.mac.Reset()
	s.in = append(s.in[:0], tok[:len(h)+1+len(payload)]...)
	s.mac.Write(s.in)
	if !hmac.Equal(want[:], s.mac.Sum(s.sum[:0])) {
		return Claims{}, false
	}
	// The claims, decoded as the parser decodes them into the same struct.
	s.in = append(s.in[:0], payload...)
	n := base64.RawURLEncoding.DecodedLen(len(s.in))
	if cap(s.claims) < n {
		s.claims = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(s.claims[:n], s.in)
	if err != nil {
		return Claims{}, false
	}
	wc := newWireClaims()
	if !parseClaims(s.claims[:n], &wc) {
		return Claims{}, false
	}
	// The parser's validator: exp required and not past (with Leeway), nbf not ahead, then
	// the IDs (wireClaims.Validate).
	now := time.Now()
	if math.IsNaN(wc.Exp) {
		return Claims{}, false
	}
	exp := secondsTime(wc.Exp)
	if !now.Before(exp.Add(Leeway)) {
		return Claims{}, false
	}
	if !math.IsNaN(wc.Nbf) && now.Before(secondsTime(wc.Nbf).Add(-Leeway)) {
		return Claims{}, false
	}
	if wc.Validate() != nil {
		return Claims{}, false
	}
	return Claims{Team: wc.Team, User: wc.Sub, Expires: exp}, true
}
