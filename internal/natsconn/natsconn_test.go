package natsconn

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/weft-edge/weft/internal/testkit"
)

// connect connects with o, closed at cleanup; a connection that takes longer than the
// context is a failure.
func connect(t *testing.T, o Options, c Client) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := o.Connect(ctx, c)
	testkit.OK(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// connectFails connects with o, which must fail at once (before a minute has passed: the
// retry loop would wait until then) with an error containing each of want, and returns it.
func connectFails(t *testing.T, o Options, want ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := o.Connect(ctx, Client{Name: "test"})
	if err == nil {
		nc.Close()
		t.Fatalf("%+v connected", o)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("retried until the context ended: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	return err
}

// TestMutualTLS: a server that requires TLS and verifies clients takes a client with its CA,
// certificate and key, by nats:// (the CA turns TLS on) or tls:// URL. A client that trusts
// another CA fails at once, saying the certificate is not trusted and naming --nats-ca.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	_, url := startServer(t, &server.Options{TLSConfig: p.serverTLS(t)})
	good := Options{URLs: url, CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}
	for _, u := range []string{url, strings.Replace(url, "nats://", "tls://", 1)} {
		o := good
		o.URLs = u
		nc := connect(t, o, Client{Name: "weft-test"})
		state, err := nc.TLSConnectionState()
		testkit.OK(t, err)
		testkit.True(t, state.HandshakeComplete && len(state.PeerCertificates) > 0, "%s: no TLS handshake: %+v", u, state)
		testkit.OK(t, nc.Publish("x", []byte("over TLS")))
		testkit.OK(t, nc.Flush())
	}

	other := newPKI(t)
	bad := good
	bad.CAFile = other.CAFile
	connectFails(t, bad, "--nats-ca", "certificate")
}

// TestTLSWithoutClientCertIsRetried: without a client certificate the server hangs up, which a
// client cannot tell from a server going away: it is retried, and the error at the end of the
// context says what the last attempt met.
func TestTLSWithoutClientCertIsRetried(t *testing.T) {
	p := newPKI(t)
	_, url := startServer(t, &server.Options{TLSConfig: p.serverTLS(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	nc, err := Options{URLs: url, CAFile: p.CAFile}.Connect(ctx, Client{Name: "test"})
	if err == nil {
		nc.Close()
		t.Fatal("connected without the client certificate the server requires")
	}
	testkit.True(t, errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "last error"), "error %v", err)
}

// TestUserPassword: the right user and password connect; a wrong password fails at once,
// naming the flag of the credentials and never showing the password.
func TestUserPassword(t *testing.T) {
	_, url := startServer(t, &server.Options{Username: "weft", Password: "s3cret-pass"})
	connect(t, Options{URLs: url, User: "weft", Password: "s3cret-pass"}, Client{Name: "test"})
	err := connectFails(t, Options{URLs: url, User: "weft", Password: "wrong-pass"}, "--nats-user", "Authorization Violation")
	testkit.True(t, !strings.Contains(err.Error(), "wrong-pass"), "error shows the password: %v", err)
	// Nor does the password of a URL show.
	err = connectFails(t, Options{URLs: strings.Replace(url, "nats://", "nats://weft:hunter2@", 1)}, "weft:xxxxx@")
	testkit.True(t, !strings.Contains(err.Error(), "hunter2"), "error shows the URL's password: %v", err)
}

// TestNKey: a user NKey the server lists connects with its seed file; another user's seed is
// refused at once, naming --nats-nkey.
func TestNKey(t *testing.T) {
	user, err := nkeys.CreateUser()
	testkit.OK(t, err)
	pub, err := user.PublicKey()
	testkit.OK(t, err)
	_, url := startServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	dir := t.TempDir()
	seed, err := user.Seed()
	testkit.OK(t, err)
	connect(t, Options{URLs: url, NKeyFile: writeFile(t, dir, "user.nk", seed)}, Client{Name: "test"})

	stranger, err := nkeys.CreateUser()
	testkit.OK(t, err)
	seed, err = stranger.Seed()
	testkit.OK(t, err)
	connectFails(t, Options{URLs: url, NKeyFile: writeFile(t, dir, "stranger.nk", seed)}, "--nats-nkey", "Authorization Violation")
}

// TestCreds: a server in operator mode (a memory resolver that knows one account) takes a
// user of that account by its .creds file; a user of an account it does not know is refused
// at once, naming --nats-creds.
func TestCreds(t *testing.T) {
	op := newOperator(t)
	_, url := startServer(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{op.claims}, AccountResolver: op.resolver})
	dir := t.TempDir()
	nc := connect(t, Options{URLs: url, CredsFile: writeFile(t, dir, "user.creds", op.creds(t, time.Time{}))}, Client{Name: "test"})
	testkit.OK(t, nc.Publish("x", []byte("with creds")))
	testkit.OK(t, nc.Flush())

	unknown := newOperator(t) // a valid creds file, of an account this server never heard of
	connectFails(t, Options{URLs: url, CredsFile: writeFile(t, dir, "unknown.creds", unknown.creds(t, time.Time{}))},
		"--nats-creds", "Authorization Violation")
}

// TestValidate: each bad option is refused before any connection, by an error naming its flag.
func TestValidate(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	op := newOperator(t)
	goodCreds := writeFile(t, dir, "good.creds", op.creds(t, time.Time{}))
	user, err := nkeys.CreateUser()
	testkit.OK(t, err)
	userSeed, err := user.Seed()
	testkit.OK(t, err)
	goodNKey := writeFile(t, dir, "user.nk", userSeed)
	account, err := nkeys.CreateAccount()
	testkit.OK(t, err)
	accountSeed, err := account.Seed()
	testkit.OK(t, err)
	expiredCert, expiredKey := p.issue(t, "expired", time.Now().Add(-time.Hour))

	// A creds file whose JWT no longer matches its signature, one whose seed is another
	// user's, one expired, and one that is not a creds file at all.
	creds := op.creds(t, time.Time{})
	tampered := bytes.Replace(creds, []byte("eyJ"), []byte("eyK"), 2)
	other := op.creds(t, time.Time{})
	mixed := append(bytes.Clone(creds[:bytes.Index(creds, []byte("************************* IMPORTANT"))]),
		other[bytes.Index(other, []byte("************************* IMPORTANT")):]...)

	base := "nats://127.0.0.1:4222"
	ok := []Options{
		{},
		{URLs: base},
		{URLs: "nats://a:4222, tls://b:4443,c:4222,ws://d"},
		{URLs: base, CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey},
		{URLs: base, CredsFile: goodCreds},
		{URLs: base, NKeyFile: goodNKey},
		{URLs: base, User: "weft", Password: "pw"},
	}
	for _, o := range ok {
		testkit.OK(t, o.Validate())
	}
	bad := []struct {
		o    Options
		flag string
	}{
		{Options{URLs: "nats://a b:4222"}, "--nats"},
		{Options{URLs: "nats://a:4222,,nats://b:4222"}, "--nats"},
		{Options{URLs: "http://a:4222"}, "--nats"},
		{Options{URLs: "nats://a:99999"}, "--nats"},
		{Options{URLs: "nats://:4222"}, "--nats"},
		{Options{CAFile: p.CAFile}, "--nats-ca"},
		{Options{User: "weft", Password: "pw"}, "--nats-user"},
		{Options{URLs: base, CAFile: dir + "/nosuch.pem"}, "--nats-ca"},
		{Options{URLs: base, CAFile: goodNKey}, "--nats-ca"},
		{Options{URLs: base, CertFile: p.ClientCert}, "--nats-cert"},
		{Options{URLs: base, KeyFile: p.ClientKey}, "--nats-key"},
		{Options{URLs: base, CertFile: p.ClientCert, KeyFile: p.ServerKey}, "--nats-cert, --nats-key"},
		{Options{URLs: base, CertFile: expiredCert, KeyFile: expiredKey}, "--nats-cert"},
		{Options{URLs: base, CredsFile: dir + "/nosuch.creds"}, "--nats-creds"},
		{Options{URLs: base, CredsFile: writeFile(t, dir, "garbage.creds", []byte("not a creds file"))}, "--nats-creds"},
		{Options{URLs: base, CredsFile: writeFile(t, dir, "tampered.creds", tampered)}, "--nats-creds"},
		{Options{URLs: base, CredsFile: writeFile(t, dir, "mixed.creds", mixed)}, "--nats-creds"},
		{Options{URLs: base, CredsFile: writeFile(t, dir, "expired.creds", op.creds(t, time.Now().Add(-time.Minute)))}, "--nats-creds"},
		{Options{URLs: base, NKeyFile: dir + "/nosuch.nk"}, "--nats-nkey"},
		{Options{URLs: base, NKeyFile: writeFile(t, dir, "account.nk", accountSeed)}, "--nats-nkey"},
		{Options{URLs: base, NKeyFile: writeFile(t, dir, "garbage.nk", []byte("SUnotaseed"))}, "--nats-nkey"},
		{Options{URLs: base, CredsFile: goodCreds, NKeyFile: goodNKey}, "--nats-creds, --nats-nkey"},
		{Options{URLs: base, NKeyFile: goodNKey, User: "weft", Password: "pw"}, "--nats-nkey, --nats-user"},
		{Options{URLs: base, Password: "pw"}, "--nats-password"},
		{Options{URLs: base, User: "weft"}, "--nats-user"},
	}
	for _, c := range bad {
		err := c.o.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.flag+":") {
			t.Errorf("%+v: Validate = %v; want an error naming %s", c.o, err, c.flag)
		}
	}
	// A URL's password never shows, also in a URL that does not parse.
	err = Options{URLs: "nats://weft:hunter2@a b:4222"}.Validate()
	testkit.True(t, err != nil && !strings.Contains(err.Error(), "hunter2"), "error shows the password: %v", err)
}

// TestFlags: the flags fill Options; every one of them is there by its documented name.
func TestFlags(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.Flags(fs, "where NATS is")
	testkit.OK(t, fs.Parse([]string{"--nats", "tls://a:4443,tls://b:4443", "--nats-ca", "ca.pem", "--nats-cert", "c.pem",
		"--nats-key", "k.pem", "--nats-creds", "u.creds", "--nats-nkey", "u.nk", "--nats-user", "u", "--nats-password", "p"}))
	testkit.Equal(t, o, Options{URLs: "tls://a:4443,tls://b:4443", CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem",
		CredsFile: "u.creds", NKeyFile: "u.nk", User: "u", Password: "p"}, "options")
	testkit.Equal(t, fs.Lookup("nats").Usage, "where NATS is", "--nats usage")
}

// TestConnectRetriesUntilTheContextEnds: a NATS that does not answer is retried until the
// context ends; the error then names the URL (without its password) and the last failure.
func TestConnectRetriesUntilTheContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testkit.OK(t, err)
	addr := ln.Addr().String()
	ln.Close() // a port nothing listens on
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	nc, err := Options{URLs: "nats://proxy:hunter2@" + addr}.Connect(ctx, Client{Name: "test"})
	if err == nil {
		nc.Close()
		t.Fatalf("connected to %s, where nothing listens", addr)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr) ||
		!strings.Contains(err.Error(), "last error") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable NATS: %v; want the context's end, the URL without its password, and the last error", err)
	}
	connectFails(t, Options{URLs: "nats://a b:4222"}, "--nats")
	connectFails(t, Options{}, "--nats")
}

// TestBackoff: the pause doubles from 50ms to a cap of 5s, jittered within its upper half.
func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{0: 50 * time.Millisecond, 1: 100 * time.Millisecond, 6: 3200 * time.Millisecond,
		7: 5 * time.Second, 50: 5 * time.Second} {
		for range 20 {
			d := Backoff(attempt)
			testkit.True(t, d >= want/2 && d <= want, "Backoff(%d) = %v; want %v to %v", attempt, d, want/2, want)
		}
	}
}
