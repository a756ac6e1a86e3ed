package tlsfiles_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/testcert"
	"github.com/weft-edge/weft/internal/tlsfiles"
)

// echoServer serves TLS on loopback with c, echoing lines, until the test ends.
func echoServer(t *testing.T, c *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c)
	testkit.OK(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(conn, conn) // TLS echo: ends when the client or the cleanup closes
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// serving serves TLS echo with a certificate ca issued to cn, loaded from its files (whose
// paths it returns, with the pair and the CA as a pool read from its file); mutual: clients
// must present a certificate ca signed.
func serving(t *testing.T, ca *testcert.CA, cn string, mutual bool) (addr string, roots *x509.CertPool, p *tlsfiles.Pair, certFile, keyFile string) {
	t.Helper()
	roots, err := tlsfiles.ReadPool(ca.File)
	testkit.OK(t, err)
	certFile, keyFile = ca.Issue(t, cn, time.Hour).Files(t)
	p, err = tlsfiles.LoadPair("client", certFile, keyFile, nil)
	testkit.OK(t, err)
	clientCAs := roots
	if !mutual {
		clientCAs = nil
	}
	return echoServer(t, tlsfiles.ServerConfig(p, clientCAs)), roots, p, certFile, keyFile
}

func dial(t *testing.T, addr string, roots *x509.CertPool) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	testkit.OK(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func servedCN(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].Subject.CommonName }

// echo checks that c still carries bytes both ways.
func echo(t *testing.T, c *tls.Conn, line string) {
	t.Helper()
	_, err := c.Write([]byte(line + "\n"))
	testkit.OK(t, err)
	got, err := bufio.NewReader(c).ReadString('\n')
	testkit.OK(t, err)
	testkit.Equal(t, got, line+"\n", "echoed")
}

// counter is weft_tls_reloads_total{result} of p's metrics, gathered as a scrape would.
func counter(t *testing.T, p []prometheus.Collector, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(p...)
	mfs, err := reg.Gather()
	testkit.OK(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "weft_tls_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no weft_tls_reloads_total{result=%q}", result)
	return 0
}

// TestPairServesReplacedCertificateToNextConnection: a certificate replaced on disk is what
// the next handshake gets, while a connection made before keeps working; a pair half
// replaced (a new certificate, its key not yet written) keeps the last good one until the
// key arrives, and counts the failed reload once.
func TestPairServesReplacedCertificateToNextConnection(t *testing.T) {
	ca := testcert.NewCA(t)
	addr, roots, p, certFile, keyFile := serving(t, ca, "first", false)

	before := dial(t, addr, roots)
	testkit.Equal(t, servedCN(before), "first", "certificate served")
	echo(t, before, "one")

	ca.Issue(t, "second", time.Hour).Replace(t, certFile, keyFile)
	after := dial(t, addr, roots)
	testkit.Equal(t, servedCN(after), "second", "certificate served after the files changed")
	echo(t, before, "two") // the connection made before is still up
	echo(t, after, "three")
	testkit.Equal(t, counter(t, p.Collectors(), "ok"), 1.0, "reloads")

	// Half a renewal: the third certificate is in place, its key is not.
	third := ca.Issue(t, "third", time.Hour)
	testkit.OK(t, os.WriteFile(certFile, third.Cert, 0o600))
	testkit.Equal(t, servedCN(dial(t, addr, roots)), "second", "certificate served while its key is missing")
	testkit.Equal(t, servedCN(dial(t, addr, roots)), "second", "certificate served while its key is missing")
	testkit.Equal(t, counter(t, p.Collectors(), "error"), 1.0, "failed reloads (once per change)")
	testkit.OK(t, os.WriteFile(keyFile, third.Key, 0o600))
	testkit.Equal(t, servedCN(dial(t, addr, roots)), "third", "certificate served once the key arrived")
	echo(t, before, "four")
}

// TestPairRefusesBadFiles: missing files, an expired certificate and a key of another
// certificate are errors at start that name the file.
func TestPairRefusesBadFiles(t *testing.T) {
	ca := testcert.NewCA(t)
	certFile, keyFile := ca.Issue(t, "good", time.Hour).Files(t)
	_, err := tlsfiles.LoadPair("client", certFile+".missing", keyFile, nil)
	testkit.True(t, err != nil && strings.Contains(err.Error(), certFile+".missing"), "missing certificate: %v", err)
	expCert, expKey := ca.Issue(t, "expired", -time.Minute).Files(t)
	_, err = tlsfiles.LoadPair("client", expCert, expKey, nil)
	testkit.True(t, err != nil && strings.Contains(err.Error(), "expired"), "expired certificate: %v", err)
	_, err = tlsfiles.LoadPair("client", certFile, expKey, nil)
	testkit.True(t, err != nil && strings.Contains(err.Error(), certFile), "a key of another certificate: %v", err)
}

// TestMutualTLS: a listener with a client CA refuses a client without a certificate it
// signed, and takes one with.
func TestMutualTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	addr, roots, _, _, _ := serving(t, ca, "server", true)

	anon, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err == nil {
		// TLS 1.3: the server's refusal arrives with the first read.
		_, err = anon.Write([]byte("x\n"))
		if err == nil {
			_, err = bufio.NewReader(anon).ReadString('\n')
		}
		anon.Close()
	}
	testkit.True(t, err != nil, "a client without a certificate was served")

	ccert, ckey := ca.Issue(t, "proxy", time.Hour).Files(t)
	cp, err := tlsfiles.LoadPair("edge", ccert, ckey, nil)
	testkit.OK(t, err)
	c, err := tls.Dial("tcp", addr, tlsfiles.ClientConfig(roots, "127.0.0.1", cp))
	testkit.OK(t, err)
	defer c.Close()
	echo(t, c, "mutual")
}

// TestFlagsChecked: a certificate without its key, and the other way round, and the client
// settings without --<prefix>-tls, are errors naming the flags.
func TestFlagsChecked(t *testing.T) {
	parse := func(args ...string) (tlsfiles.ServerFlags, tlsfiles.ClientFlags) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		var s tlsfiles.ServerFlags
		var c tlsfiles.ClientFlags
		s.Flags(fs, "clients")
		c.Flags(fs, "edge", "edges")
		testkit.OK(t, fs.Parse(args))
		return s, c
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert, --tls-key"},
		{[]string{"--tls-key", "k.pem"}, "--tls-cert, --tls-key"},
		{[]string{"--tls-client-ca", "ca.pem"}, "--tls-client-ca needs --tls-cert"},
		{[]string{"--edge-ca", "ca.pem"}, "need --edge-tls"},
		{[]string{"--edge-tls", "--edge-cert", "c.pem"}, "--edge-cert, --edge-key"},
	} {
		s, c := parse(tc.args...)
		err := errors.Join(s.Check(), c.Check())
		testkit.True(t, err != nil && strings.Contains(err.Error(), tc.want), "%q: %v, want %q", tc.args, err, tc.want)
	}
	s, c := parse("--tls-cert", "c.pem", "--tls-key", "k.pem", "--edge-tls", "--edge-ca", "ca.pem")
	testkit.OK(t, errors.Join(s.Check(), c.Check()))
}
