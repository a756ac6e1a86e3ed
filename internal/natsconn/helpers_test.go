package natsconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/weft-edge/weft/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// pki is a certificate authority with a server certificate (for 127.0.0.1 and localhost) and a
// client certificate, each written as PEM files into a test's temporary directory.
type pki struct {
	ca                    *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	dir                   string
	CAFile                string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	testkit.OK(t, err)
	p.ca, err = x509.ParseCertificate(der)
	testkit.OK(t, err)
	p.caKey = key
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.ServerCert, p.ServerKey = p.issue(t, "server", x509.ExtKeyUsageServerAuth, time.Now().Add(24*time.Hour))
	p.ClientCert, p.ClientKey = p.issue(t, "client", x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	testkit.OK(t, err)
	return key
}

// issue signs a certificate named name for usage, valid until notAfter, and writes it and its
// key; it returns their paths.
func (p *pki) issue(t *testing.T, name string, usage x509.ExtKeyUsage, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	testkit.OK(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	testkit.OK(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	testkit.OK(t, err)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	testkit.OK(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// serverTLS is a server TLS configuration with p's server certificate that requires clients to
// present a certificate signed by p's CA.
func (p *pki) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	testkit.OK(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
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
