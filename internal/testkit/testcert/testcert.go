// Package testcert makes the certificates TLS tests need: a CA of the test's own and
// certificates it signs for loopback names, written as PEM files the way an operator's
// tooling (cert-manager, a Kubernetes Secret) would leave them.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

// CA is a certificate authority of one test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA's certificate as a PEM file, for --tls-client-ca, --edge-ca and the like.
	File   string
	dir    string
	serial atomic.Int64
}

// NewCA makes a CA whose files live in a temporary directory of t.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	testkit.OK(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "weft test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	testkit.OK(t, err)
	cert, err := x509.ParseCertificate(der)
	testkit.OK(t, err)
	ca := &CA{cert: cert, key: key, dir: t.TempDir()}
	ca.serial.Store(1)
	ca.File = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Pool is a pool holding the CA, for a tls.Config's RootCAs or ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Pair is a certificate and its key, as PEM bytes.
type Pair struct {
	Cert, Key []byte
	Serial    *big.Int
}

// Issue signs a certificate for 127.0.0.1, ::1 and localhost (server and client use), valid
// for validFor from an hour ago; cn tells certificates apart in a test's failures. Given
// names, the certificate is for those DNS names alone: a client that dials 127.0.0.1 must be
// told the name to verify.
func (ca *CA) Issue(t testing.TB, cn string, validFor time.Duration, names ...string) Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	testkit.OK(t, err)
	serial := big.NewInt(ca.serial.Add(1))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if len(names) > 0 {
		tmpl.DNSNames, tmpl.IPAddresses = names, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	testkit.OK(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	testkit.OK(t, err)
	return Pair{
		Cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		Serial: serial,
	}
}

// Files writes p to cert.pem and key.pem in a new directory and returns their paths.
func (p Pair) Files(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), "pair")
	testkit.OK(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	p.Replace(t, certFile, keyFile)
	return certFile, keyFile
}

// Replace puts p in place of the files at certFile and keyFile, each by a rename (as a
// renewal does: a reader never sees half a file), the key first.
func (p Pair) Replace(t testing.TB, certFile, keyFile string) {
	t.Helper()
	replace(t, keyFile, p.Key)
	replace(t, certFile, p.Cert)
}

func replace(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	testkit.OK(t, os.WriteFile(tmp, b, 0o600))
	testkit.OK(t, os.Rename(tmp, path))
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	testkit.OK(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}
