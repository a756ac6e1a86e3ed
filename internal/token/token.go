// Package token issues and verifies the bearer tokens clients connect with (docs/protocol.md section
// 1): JWTs signed with HS256 under a secret the issuer and every verifier share, naming the user
// (sub) and the team (team). The team a connection belongs to comes from its token and from
// nothing else the client says, so everything that scopes data by team starts here.
//
// Start with [New], then [Keys.Verify] on every handshake and [FromRequest] to find the token.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevSecret is the well-known secret `weft dev` and `weft token` use when none is given. It is
// for `weft dev` only: anyone can mint tokens for any team with it, so never run a deployment
// that verifies against it.
const DevSecret = "weft-dev-secret-change-me-please"

const (
	// MinSecretLen is the shortest secret [New] accepts.
	MinSecretLen = 16
	// MaxIDLen is the longest team or user ID a token may carry, in bytes.
	MaxIDLen = 255
	// Leeway is the clock skew tolerated between issuer and verifier when checking exp and nbf.
	Leeway = 5 * time.Second
	// maxTokenLen bounds what Verify will parse. Two 255-byte IDs and the rest of a token come
	// to well under 1 KiB; the bound keeps a hostile client from making us base64- and
	// JSON-decode megabytes on the handshake path.
	maxTokenLen = 4 << 10
)

// ErrInvalid is wrapped by every error Verify returns; the reasons below wrap it too, so a
// caller can answer 401 on ErrInvalid and count by reason. No error carries the secret.
var (
	ErrInvalid = errors.New("token: invalid")
	// ErrMalformed: not three base64url segments with JSON header and claims of the right
	// types, or longer than any token we issue.
	ErrMalformed = fmt.Errorf("%w: malformed", ErrInvalid)
	// ErrSignature: signed with another secret, or with any algorithm but HS256 (including
	// "none"), or the algorithm is missing or unknown.
	ErrSignature = fmt.Errorf("%w: bad signature or algorithm", ErrInvalid)
	// ErrExpired: exp is more than Leeway in the past.
	ErrExpired = fmt.Errorf("%w: expired", ErrInvalid)
	// ErrClaims: exp missing, nbf in the future, or sub or team missing, empty or longer than
	// MaxIDLen.
	ErrClaims = fmt.Errorf("%w: bad claims", ErrInvalid)
)

// Claims is who a token says the caller is. Team comes only from here, never from anything else a
// client says.
type Claims struct {
	Team, User string
	Expires    time.Time
}

// Secret is one HS256 secret of a key set (NewSet). ID is the key ID a token names in its
// header's "kid"; a secret with no ID verifies tokens that name none (those issued before keys
// had IDs), and signs without one.
type Secret struct {
	ID  string
	Key []byte
}

// Keys issues and verifies tokens under a set of secrets: the first signs, every one verifies
// the tokens that name it. It is safe for concurrent use.
type Keys struct {
	secrets []*secretKey // the first signs
	byID    map[string]*secretKey
	parser  *jwt.Parser
	keyFn   jwt.Keyfunc
}

type secretKey struct {
	id     string
	secret []byte
	key    any // secret, boxed once so the key func does not allocate per call
	hs256  *hs256
	header string // the header segment Issue writes under this key (verifyFast)
}

// New returns Keys for secret, which it copies. A secret shorter than MinSecretLen is refused:
// HS256 is only as strong as its secret.
func New(secret []byte) (*Keys, error) {
	return NewSet([]Secret{{Key: secret}})
}

// MaxKeyIDLen is the longest key ID a Secret may have.
const MaxKeyIDLen = 64

// NewSet returns Keys for secrets (copied): the first signs what Issue issues, and each
// verifies the tokens whose "kid" is its ID. Rolling a secret without dropping anyone: add the
// new one after the old everywhere tokens are verified, then put it first where they are
// issued, and remove the old one once the last token it signed has expired (docs/security.md).
func NewSet(secrets []Secret) (*Keys, error) {
	if len(secrets) == 0 {
		return nil, errors.New("token: no secret")
	}
	k := &Keys{byID: map[string]*secretKey{}}
	for _, s := range secrets {
		if len(s.Key) < MinSecretLen {
			return nil, fmt.Errorf("token: secret %q is %d bytes, need at least %d", s.ID, len(s.Key), MinSecretLen)
		}
		if len(s.ID) > MaxKeyIDLen || strings.ContainsFunc(s.ID, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.')
		}) {
			return nil, fmt.Errorf("token: key ID %q: want at most %d letters, digits, '-', '_' or '.'", s.ID, MaxKeyIDLen)
		}
		if _, dup := k.byID[s.ID]; dup {
			return nil, fmt.Errorf("token: key ID %q twice", s.ID)
		}
		sk := &secretKey{id: s.ID, secret: append([]byte(nil), s.Key...)}
		sk.key, sk.hs256, sk.header = sk.secret, newHS256(sk.secret), headerSegment(s.ID)
		k.byID[s.ID] = sk
		k.secrets = append(k.secrets, sk)
	}
	k.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	)
	k.keyFn = func(t *jwt.Token) (any, error) {
		// WithValidMethods has already refused every other alg; this is a second lock on the
		// same door, because handing an HMAC secret to any other method is the classic JWT hole.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, errors.New("unexpected signing method")
		}
		id, _ := t.Header["kid"].(string)
		if _, named := t.Header["kid"]; named && id == "" {
			return nil, errors.New("kid is not a key ID")
		}
		sk, ok := k.byID[id]
		if !ok {
			return nil, errors.New("unknown key ID")
		}
		t.Method = sk.hs256 // the same algorithm, pooled: see hs256
		return sk.key, nil
	}
	return k, nil
}

// RoutingKey is the key proxies sign their routing headers with for the edges
// (internal/routesig): derived from the secret, so a deployment shares no second secret, and
// not the secret itself, so the two uses never meet.
func (k *Keys) RoutingKey() []byte { return k.Derived(routingLabel)[0] }

// RoutingKeys are the routing keys of every secret, the signing one's first: a signature
// under any of them verifies while proxies and edges roll a secret.
func (k *Keys) RoutingKeys() [][]byte { return k.Derived(routingLabel) }

const routingLabel = "weft routing headers v1"

// Derived returns a 32-byte key for the use label names, derived from each secret (the signing
// one's first): what else every holder of the secrets must share (routing signatures, sealed
// cursors) needs no secret of its own, and no use meets another or the tokens' own.
func (k *Keys) Derived(label string) [][]byte {
	out := make([][]byte, 0, len(k.secrets))
	for _, sk := range k.secrets {
		m := hmac.New(sha256.New, sk.secret)
		m.Write([]byte(label))
		out = append(out, m.Sum(nil))
	}
	return out
}

// Issue returns a token for user in team that expires after ttl (at least a second; exp has
// whole-second precision).
func (k *Keys) Issue(team, user string, ttl time.Duration) (string, error) {
	if err := checkID("team", team); err != nil {
		return "", err
	}
	if err := checkID("user", user); err != nil {
		return "", err
	}
	if ttl < time.Second {
		return "", fmt.Errorf("token: ttl %v is shorter than a second", ttl)
	}
	now := time.Now()
	c := jwt.MapClaims{
		"sub":  user,
		"team": team,
		"exp":  jwt.NewNumericDate(now.Add(ttl)),
		"iat":  jwt.NewNumericDate(now), // informational: never checked
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	if id := k.secrets[0].id; id != "" {
		t.Header["kid"] = id
	}
	s, err := t.SignedString(k.secrets[0].secret)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}

// Verify checks tok's algorithm, signature and claims and returns who it names. Every error wraps
// ErrInvalid and one of ErrMalformed, ErrSignature, ErrExpired or ErrClaims.
func (k *Keys) Verify(tok string) (Claims, error) {
	if len(tok) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w (%d bytes, limit %d)", ErrMalformed, len(tok), maxTokenLen)
	}
	if c, ok := k.verifyFast(tok); ok {
		return c, nil
	}
	return k.verifyParsed(tok)
}

// verifyParsed is Verify by the library's parser: every token verifyFast does not take, and
// the reason for every refusal.
func (k *Keys) verifyParsed(tok string) (Claims, error) {
	c := newWireClaims()
	if _, err := k.parser.ParseWithClaims(tok, &c, k.keyFn); err != nil {
		return Claims{}, classify(err)
	}
	if math.IsNaN(c.Exp) { // WithExpirationRequired makes this unreachable; keep it so.
		return Claims{}, fmt.Errorf("%w (no exp)", ErrClaims)
	}
	return Claims{Team: c.Team, User: c.Sub, Expires: secondsTime(c.Exp)}, nil
}

// classify maps the library's error to our reason. The library's text is kept for logs but its
// sentinels are not wrapped: callers depend on ours, not on jwt's.
func classify(err error) error {
	var reason error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = ErrExpired
	default:
		reason = ErrClaims
	}
	return fmt.Errorf("%w (%v)", reason, err)
}

func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("token: %s ID is empty", what)
	case len(id) > MaxIDLen:
		return fmt.Errorf("token: %s ID is %d bytes, limit %d", what, len(id), MaxIDLen)
	}
	// IDs become parts of NATS subjects (weft.events.<team>): a '.', '*' or '>' in a team ID
	// would subscribe a client to other teams' events. Only letters, digits, '_' and '-' pass.
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("token: %s ID has a character other than letters, digits, '_' and '-'", what)
		}
	}
	return nil
}

// wireClaims is the JSON claims set as Verify reads it. It implements jwt.Claims itself, rather
// than embedding jwt.RegisteredClaims, to keep decoding cheap on the handshake path: it skips
// what we never read (aud, iss, jti, iat), and it takes exp and nbf as plain numbers instead of
// *jwt.NumericDate, whose decoder allocates several times per field. A JSON number is never NaN,
// so NaN means absent (or null): see newWireClaims.
type wireClaims struct {
	Sub  string  `json:"sub"`
	Team string  `json:"team"`
	Exp  float64 `json:"exp"`
	Nbf  float64 `json:"nbf"`
}

func newWireClaims() wireClaims { return wireClaims{Exp: math.NaN(), Nbf: math.NaN()} }

// numericDate converts seconds since the epoch exactly as jwt.NumericDate's own decoder does, so
// that an exp means the same instant here as it does to the library's validator. NaN is nil.
func numericDate(sec float64) *jwt.NumericDate {
	if math.IsNaN(sec) {
		return nil
	}
	return &jwt.NumericDate{Time: secondsTime(sec)}
}

func secondsTime(sec float64) time.Time {
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(frac*1e9)).Truncate(jwt.TimePrecision)
}

func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(c.Exp), nil }
func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return numericDate(c.Nbf), nil }
func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c *wireClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *wireClaims) GetSubject() (string, error)                  { return c.Sub, nil }
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// Validate is called by the parser after exp and nbf pass (jwt.ClaimsValidator).
func (c *wireClaims) Validate() error {
	if err := checkID("team", c.Team); err != nil {
		return err
	}
	return checkID("user", c.Sub)
}
