// Package natsconn is how every weft process reaches a NATS cluster, written once: the flags
// (seed URLs, TLS, credentials), their validation before any connection, the connection's
// options (reconnect forever with jitter, pings, logging handlers), the start-up retry, and
// the connection's Prometheus metrics. It uses the NATS client only, never the server, so
// that the proxy-only binary can use it (cmd/weft-proxy/deps_test.go).
package natsconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Options are how a process reaches NATS: the seed URLs of the cluster, TLS, and one way of
// authenticating. They are the --nats* flags (Flags); Validate checks them.
type Options struct {
	// URLs are the seeds of the server or cluster, comma-separated (--nats). The client
	// learns the rest of a cluster from the server it reaches.
	URLs string

	// CAFile is a PEM file of the certificate authorities the servers' certificates must
	// chain to (--nats-ca). It turns TLS on, as a tls:// URL does.
	CAFile string

	// CertFile and KeyFile are a client certificate and its key, PEM, for servers that
	// verify clients (mutual TLS: --nats-cert, --nats-key). Both or neither.
	CertFile, KeyFile string

	// CredsFile is a NATS .creds file: a user JWT and its NKey seed, for servers in operator
	// mode (--nats-creds).
	CredsFile string

	// NKeyFile is a file with a user NKey seed, for servers that list NKey users (--nats-nkey).
	NKeyFile string

	// User and Password authenticate with a user name and password (--nats-user,
	// --nats-password; the password is better given as WEFT_NATS_PASSWORD). Never logged.
	User, Password string
}

// Flags registers the options on fs. urlsUsage says what --nats is to this command (and what
// an empty value means there); the other flags mean the same to every command.
func (o *Options) Flags(fs *flag.FlagSet, urlsUsage string) {
	fs.StringVar(&o.URLs, "nats", "", urlsUsage)
	fs.StringVar(&o.CAFile, "nats-ca", "", "PEM file of the CAs that sign the NATS servers' certificates; turns TLS on (as tls:// URLs do)")
	fs.StringVar(&o.CertFile, "nats-cert", "", "PEM client certificate for NATS servers that verify clients (mutual TLS); with --nats-key")
	fs.StringVar(&o.KeyFile, "nats-key", "", "PEM key of --nats-cert")
	fs.StringVar(&o.CredsFile, "nats-creds", "", "NATS credentials file (.creds: user JWT and NKey seed), for servers in operator mode")
	fs.StringVar(&o.NKeyFile, "nats-nkey", "", "file with a NATS user NKey seed (SU…)")
	fs.StringVar(&o.User, "nats-user", "", "NATS user name; with --nats-password")
	fs.StringVar(&o.Password, "nats-password", "", "NATS password of --nats-user; prefer the environment twin, which ps does not show")
}

// Validate checks the options without connecting: each seed URL parses, the files exist and
// hold what their flag says (a CA, a certificate and its key, a user JWT signed for its seed,
// a user NKey seed), and at most one way of authenticating is given. Each error names its
// flag. Empty URLs (a process that runs its own embedded server) take no TLS or credentials.
func (o Options) Validate() error {
	if o.URLs == "" {
		for _, f := range []struct{ name, v string }{{"--nats-ca", o.CAFile}, {"--nats-cert", o.CertFile},
			{"--nats-key", o.KeyFile}, {"--nats-creds", o.CredsFile}, {"--nats-nkey", o.NKeyFile},
			{"--nats-user", o.User}, {"--nats-password", o.Password}} {
			if f.v != "" {
				return fmt.Errorf("%s: given without --nats: it configures the connection to an external NATS (an embedded server takes neither TLS nor credentials)", f.name)
			}
		}
		return nil
	}
	if _, err := o.seeds(); err != nil {
		return err
	}
	if err := o.validateTLS(); err != nil {
		return err
	}
	return o.validateAuth()
}

// seeds are the URLs of --nats, each checked; errors never show a URL's password.
func (o Options) seeds() ([]*url.URL, error) {
	var out []*url.URL
	for _, raw := range strings.Split(o.URLs, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return nil, fmt.Errorf("--nats: an empty URL in %q", redactList(o.URLs))
		}
		s := raw
		if !strings.Contains(s, "://") {
			s = "nats://" + s // as the client reads a bare host:port
		}
		u, err := url.Parse(s)
		if err != nil {
			// url's own error quotes the URL, password and all.
			return nil, fmt.Errorf("--nats: %q is not a URL", redactRaw(raw))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("--nats: %q: scheme %q, want nats://, tls://, ws:// or wss://", u.Redacted(), u.Scheme)
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("--nats: %q has no host", u.Redacted())
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("--nats: %q: port %q out of range", u.Redacted(), p)
			}
		}
		out = append(out, u)
	}
	return out, nil
}

func (o Options) validateTLS() error {
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return fmt.Errorf("--nats-ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return fmt.Errorf("--nats-ca: no PEM certificate in %s", o.CAFile)
		}
	}
	switch {
	case o.CertFile == "" && o.KeyFile == "":
		return nil
	case o.CertFile == "":
		return errors.New("--nats-key: needs --nats-cert, the certificate it is the key of")
	case o.KeyFile == "":
		return errors.New("--nats-cert: needs --nats-key, the certificate's key")
	}
	pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return fmt.Errorf("--nats-cert, --nats-key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("--nats-cert: %w", err)
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return fmt.Errorf("--nats-cert: %s expired on %s", o.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func (o Options) validateAuth() error {
	var given []string
	for _, f := range []struct{ name, v string }{{"--nats-creds", o.CredsFile}, {"--nats-nkey", o.NKeyFile}, {"--nats-user", o.User}} {
		if f.v != "" {
			given = append(given, f.name)
		}
	}
	if len(given) > 1 {
		return fmt.Errorf("%s: give one way of authenticating to NATS, not several", strings.Join(given, ", "))
	}
	switch {
	case o.Password != "" && o.User == "":
		return errors.New("--nats-password: needs --nats-user")
	case o.User != "" && o.Password == "":
		return errors.New("--nats-user: needs --nats-password (or WEFT_NATS_PASSWORD)")
	case o.CredsFile != "":
		return validateCreds(o.CredsFile)
	case o.NKeyFile != "":
		if _, err := nats.NkeyOptionFromSeed(o.NKeyFile); err != nil {
			return fmt.Errorf("--nats-nkey: %s: %w", o.NKeyFile, err)
		}
	}
	return nil
}

// validateCreds checks a .creds file as a server would: a user JWT, signed by its issuer and
// not expired, and the seed of the user it names.
func validateCreds(file string) error {
	contents, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--nats-creds: %w", err)
	}
	defer clear(contents) // it holds a private key
	token, err := nkeys.ParseDecoratedJWT(contents)
	if err != nil {
		return fmt.Errorf("--nats-creds: %s: %w", file, err)
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return fmt.Errorf("--nats-creds: %s: no valid user JWT: %w", file, err)
	}
	if claims.Expires > 0 && time.Now().Unix() >= claims.Expires {
		return fmt.Errorf("--nats-creds: %s: the user JWT expired on %s", file, time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
	}
	kp, err := nkeys.ParseDecoratedUserNKey(contents)
	if err != nil {
		return fmt.Errorf("--nats-creds: %s: no user NKey seed: %w", file, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("--nats-creds: %s: %w", file, err)
	}
	if pub != claims.Subject {
		return fmt.Errorf("--nats-creds: %s: the seed is not the key of the JWT's user %s", file, claims.Subject)
	}
	return nil
}

// authFlag names the flag of the credentials in use, for errors about them.
func (o Options) authFlag() string {
	switch {
	case o.CredsFile != "":
		return "--nats-creds"
	case o.NKeyFile != "":
		return "--nats-nkey"
	case o.User != "":
		return "--nats-user"
	}
	return "no credentials"
}

// Redacted is URLs with the password of each hidden, for logs and errors.
func (o Options) Redacted() string { return redactList(o.URLs) }

func redactList(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		parts[i] = redactRaw(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// redactRaw hides the user information of one URL, also of one url.Parse refuses.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil && strings.Contains(raw, "://") {
		return u.Redacted()
	}
	rest := raw
	scheme := ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	if i := strings.LastIndex(host, "@"); i >= 0 {
		return scheme + "xxxxx" + rest[i:]
	}
	return raw
}
