package natsconn

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/testcert"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// pki is a certificate authority with a server certificate (for 127.0.0.1 and localhost) and a
// client certificate, each written as PEM files into a test's temporary directory.
type pki struct {
	ca                    *testcert.CA
	CAFile                string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{ca: testcert.NewCA(t)}
	p.CAFile = p.ca.File
	p.ServerCert, p.ServerKey = p.issue(t, "server", time.Now().Add(24*time.Hour))
	p.ClientCert, p.ClientKey = p.issue(t, "client", time.Now().Add(24*time.Hour))
	return p
}

// issue signs a certificate named name, valid until notAfter, and writes it and its key; it
// returns their paths.
func (p *pki) issue(t *testing.T, name string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	return p.ca.Issue(t, name, time.Until(notAfter)).Files(t)
}

// serverTLS is a server TLS configuration with p's server certificate that requires clients to
// present a certificate signed by p's CA.
func (p *pki) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	testkit.OK(t, err)
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: p.ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12}
}

// startServer starts a NATS server on loopback with opts (its host, port and logging set
// here; port 0 is a free one) and shuts it down at cleanup. It returns the server and its URL.
func startServer(t *testing.T, opts *server.Options) (*server.Server, string) {
	t.Helper()
	opts.Host = "127.0.0.1"
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.NoSigs, opts.NoLog = true, true
	if opts.TLSConfig != nil {
		opts.TLS, opts.TLSVerify = true, opts.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 10 // seconds: a busy 2-core machine with the race detector is slow at handshakes
	}
	srv, err := server.NewServer(opts)
	testkit.OK(t, err)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	addr := srv.Addr().(*net.TCPAddr)
	return srv, "nats://" + addr.String()
}

// writeFile writes contents to name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, contents []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	testkit.OK(t, os.WriteFile(path, contents, 0o600))
	return path
}

// operator is an operator-mode trust chain: an operator, one account it signs, and what a
// memory resolver needs to know the account.
type operator struct {
	claims   *jwt.OperatorClaims
	account  nkeys.KeyPair
	resolver *server.MemAccResolver
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	okp, err := nkeys.CreateOperator()
	testkit.OK(t, err)
	opub, err := okp.PublicKey()
	testkit.OK(t, err)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "weft-test"
	ojwt, err := oc.Encode(okp)
	testkit.OK(t, err)
	claims, err := jwt.DecodeOperatorClaims(ojwt)
	testkit.OK(t, err)

	akp, err := nkeys.CreateAccount()
	testkit.OK(t, err)
	apub, err := akp.PublicKey()
	testkit.OK(t, err)
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "WEFT"
	ajwt, err := ac.Encode(okp)
	testkit.OK(t, err)
	res := &server.MemAccResolver{}
	testkit.OK(t, res.Store(apub, ajwt))
	return &operator{claims: claims, account: akp, resolver: res}
}

// creds is the contents of a .creds file of a new user of the account, expiring at expires
// (zero: never).
func (o *operator) creds(t *testing.T, expires time.Time) []byte {
	t.Helper()
	ukp, err := nkeys.CreateUser()
	testkit.OK(t, err)
	upub, err := ukp.PublicKey()
	testkit.OK(t, err)
	seed, err := ukp.Seed()
	testkit.OK(t, err)
	uc := jwt.NewUserClaims(upub)
	uc.Name = "weft"
	if !expires.IsZero() {
		uc.Expires = expires.Unix()
	}
	ujwt, err := uc.Encode(o.account)
	testkit.OK(t, err)
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	testkit.OK(t, err)
	return creds
}
