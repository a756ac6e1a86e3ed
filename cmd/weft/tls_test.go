package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/testcert"
	"github.com/weft-edge/weft/internal/tlsfiles"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
)

// runUntil runs the weft command args in this process until the test ends, and returns the
// submatches of ready in what it prints once they appear.
func runUntil(t *testing.T, ready *regexp.Regexp, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(args, "--log-level", "error"), &out) }()
	t.Cleanup(func() { // cleanups run last first: the proxy stops before its edge, the edge before the origin
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("weft %s stopped with %v", args[0], err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("weft %s did not stop after its context ended", args[0])
		}
	})
	var m []string
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("weft %s exited early: %v\n%s", args[0], err, out.String())
		default:
		}
		m = ready.FindStringSubmatch(out.String())
		return m != nil
	}, "weft "+args[0]+" to print where it listens")
	return m
}

// TestTLSEndToEnd runs an origin, an edge and a proxy as an operator would with TLS on every
// link: a client reaches the proxy over TLS (wss), the proxy the edge over mutual TLS, the edge
// the origin over mutual TLS. The proxy's certificate, replaced on disk, is what the next client
// gets, while the session already up stays up; the edge refuses plain connections and TLS
// ones without a client certificate its CA signed.
func TestTLSEndToEnd(t *testing.T) {
	ca := testcert.NewCA(t)
	roots, err := tlsfiles.ReadPool(ca.File)
	testkit.OK(t, err)
	originCert, originKey := ca.Issue(t, "origin", time.Hour).Files(t)
	// The edge's certificate names no address, as in a cluster where edges come and go: proxies
	// and peers verify the one name every edge's carries (--edge-server-name).
	edgeCert, edgeKey := ca.Issue(t, "edge", time.Hour, "weft-edge").Files(t)
	proxyCert, proxyKey := ca.Issue(t, "proxy", time.Hour).Files(t)
	toEdgeCert, toEdgeKey := ca.Issue(t, "proxy-to-edges", time.Hour).Files(t)
	toOriginCert, toOriginKey := ca.Issue(t, "edge-to-origin", time.Hour).Files(t)

	o := runUntil(t, regexp.MustCompile(`origin  https://(\S+)/origin/v1/teams/(\S+)\n  nats    (\S+)\n`),
		"origin", "--addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--size", "tiny", "--rate", "20",
		"--tls-cert", originCert, "--tls-key", originKey, "--tls-client-ca", ca.File)
	originAddr, team, natsURL := o[1], o[2], o[3]
	e := runUntil(t, regexp.MustCompile(`weft edge tls-edge: https://(\S+) \(origin [^)]+\)\nweft edge tls-edge ops: (\S+)\n`),
		"edge", "--node", "tls-edge", "--addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0", "--nats", natsURL,
		"--token-secret", testSecret, "--drain", "100ms", "--origin", "https://"+originAddr, "--origin-ca", ca.File,
		"--origin-cert", toOriginCert, "--origin-key", toOriginKey,
		"--tls-cert", edgeCert, "--tls-key", edgeKey, "--tls-client-ca", ca.File,
		"--peer-tls", "--peer-ca", ca.File, "--peer-server-name", "weft-edge", "--peer-cert", toEdgeCert, "--peer-key", toEdgeKey)
	edgeAddr, edgeOps := e[1], e[2]
	p := runUntil(t, regexp.MustCompile(`weft proxy: https://(\S+) \(WebSocket wss://\S+/ws\)\n`),
		"proxy", "--addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0", "--nats", natsURL, "--token-secret", testSecret,
		"--tls-cert", proxyCert, "--tls-key", proxyKey,
		"--edge-tls", "--edge-ca", ca.File, "--edge-server-name", "weft-edge", "--edge-cert", toEdgeCert, "--edge-key", toEdgeKey)
	proxyAddr := p[1]

	// A user of the team, asked of the origin over mutual TLS as the edge asks it.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer hc.CloseIdleConnections()
	pair, err := tlsfiles.LoadPair("test", toOriginCert, toOriginKey, nil)
	testkit.OK(t, err)
	ohc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsfiles.ClientConfig(roots, "", pair)}}
	defer ohc.CloseIdleConnections()
	oc, err := origin.NewClient(origin.ClientConfig{BaseURL: "https://" + originAddr, HTTPClient: ohc})
	testkit.OK(t, err)
	users, err := oc.UsersPage(context.Background(), team, "", 1)
	testkit.OK(t, err)
	keys, err := token.New([]byte(testSecret))
	testkit.OK(t, err)
	tok, err := keys.Issue(team, users.Users[0].ID, time.Hour) // user 0 is never deactivated
	testkit.OK(t, err)

	// A session through the proxy, over wss; the proxy answers 503 until it has heard the edge.
	var c *client.Client
	var last error
	testkit.EventuallyOr(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, last = client.Dial(ctx, client.Options{URL: "wss://" + proxyAddr + "/ws", Token: tok, HTTPClient: hc})
		return last == nil
	}, "a session through the proxy over TLS", func() { t.Logf("last error: %v", last) })
	defer c.Close()
	testkit.Equal(t, c.Hello().Node, "tls-edge", "the node that said hello")
	testkit.True(t, len(c.Boot().Channels) > 0, "the boot carried channels (loaded from the origin over TLS)")

	// /api through the proxy, over TLS both ways.
	req, _ := http.NewRequest(http.MethodPost, "https://"+proxyAddr+"/api/users.info", strings.NewReader(`{"users":["`+users.Users[0].ID+`"]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	testkit.OK(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	testkit.True(t, resp.StatusCode == http.StatusOK && strings.Contains(string(body), users.Users[0].ID),
		"/api/users.info through the proxy: %s %s", resp.Status, body)

	// The proxy's certificate renewed on disk: the next client gets the new one, the session
	// already up goes on without a reconnect.
	testkit.Equal(t, servedCN(t, proxyAddr, roots), "proxy", "the proxy's certificate")
	ca.Issue(t, "proxy-renewed", time.Hour).Replace(t, proxyCert, proxyKey)
	testkit.Equal(t, servedCN(t, proxyAddr, roots), "proxy-renewed", "the proxy's certificate after the renewal")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testkit.OK(t, c.Ping(ctx))
	testkit.Equal(t, c.Stats().Connects, int64(1), "connections the session made")

	// The edge takes neither plain HTTP nor TLS without a client certificate.
	if resp, err := http.Get("http://" + edgeAddr + "/healthz"); err == nil {
		resp.Body.Close()
		testkit.True(t, resp.StatusCode != http.StatusOK, "the TLS edge answered plain HTTP with %s", resp.Status)
	}
	if resp, err := hc.Get("https://" + edgeAddr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("the edge served a client without a certificate: %s", resp.Status)
	}
	// Nor does the origin serve a client without a certificate.
	if resp, err := hc.Get("https://" + originAddr + "/origin/v1/teams/" + team); err == nil {
		resp.Body.Close()
		t.Errorf("the origin served a client without a certificate: %s", resp.Status)
	}
	m := get(t, edgeOps+"/metrics")
	for _, want := range []string{`weft_tls_certificate_expiry_timestamp_seconds{listener="client"}`,
		`weft_tls_certificate_expiry_timestamp_seconds{listener="origin"}`,
		`weft_tls_certificate_expiry_timestamp_seconds{listener="peer"}`, `weft_build_info{commit=`} {
		testkit.True(t, strings.Contains(m, want), "the edge's /metrics lacks %s", want)
	}
}

// servedCN is the common name of the certificate a TLS server at addr serves now.
func servedCN(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	testkit.OK(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}
