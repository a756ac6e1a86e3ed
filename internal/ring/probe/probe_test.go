package probe_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/ring/probe"
)

// server serves h on a loopback port and returns what an edge there would have announced.
func server(t *testing.T, h http.Handler) (*httptest.Server, ring.Announcement) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET "+probe.Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, edgeAt(srv.Listener.Addr().String())
}

func edgeAt(addr string) ring.Announcement {
	return ring.Announcement{Node: "edge-1", Addr: addr, State: ring.EdgeServing, Sessions: 7, Teams: 3, Admitting: true,
		LagP99MS: 2.5, IntervalMS: 1000, Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// TestProbeAnswered: what the edge's Handler answers, Probe returns as it was; over and over on
// one client (its idle connection reused).
func TestProbeAnswered(t *testing.T) {
	var now ring.Announcement
	_, known := server(t, probe.Handler(func() (ring.Announcement, bool) { return now, true }, nil))
	now = known
	now.Sessions, now.State = 9, ring.EdgeDraining
	c := probe.New(nil)
	defer c.Close()
	for range 3 {
		got, err := c.Probe(context.Background(), known)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Started.Equal(now.Started) {
			t.Fatalf("started %v, want %v", got.Started, now.Started)
		}
		got.Started = now.Started
		if got != now {
			t.Fatalf("answer %+v, want %+v", got, now)
		}
	}
}

// TestProbeNotAnswered: every way of not being the edge asked is an error: in no ring (404),
// another node or another address answering, something that is no weft edge (not JSON, or
// too much), an address that refuses, and one that never answers (the context's deadline).
func TestProbeNotAnswered(t *testing.T) {
	c := probe.New(nil)
	defer c.Close()
	cases := []struct {
		name string
		h    func(addr string) http.Handler
		want string
	}{
		{"in no ring", func(string) http.Handler {
			return probe.Handler(func() (ring.Announcement, bool) { return ring.Announcement{}, false }, nil)
		}, "404"},
		{"another node", func(addr string) http.Handler {
			return probe.Handler(func() (ring.Announcement, bool) { a := edgeAt(addr); a.Node = "edge-2"; return a, true }, nil)
		}, "another process"},
		{"another address", func(addr string) http.Handler {
			return probe.Handler(func() (ring.Announcement, bool) { a := edgeAt(addr); a.Addr = "10.0.0.1:80"; return a, true }, nil)
		}, "another process"},
		{"invalid", func(addr string) http.Handler {
			return probe.Handler(func() (ring.Announcement, bool) { a := edgeAt(addr); a.State = "gone"; return a, true }, nil)
		}, "unknown state"},
		{"not json", func(string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		}, "not an announcement"},
		{"too much", func(string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(strings.Repeat(" ", 5000))) })
		}, "over 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Handler
			srv, last := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
			h = tc.h(srv.Listener.Addr().String())
			_, err := c.Probe(context.Background(), last)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, err := c.Probe(context.Background(), edgeAt(addr)); err == nil {
			t.Fatal("a refusing address answered")
		}
	})

	t.Run("silent", func(t *testing.T) {
		release := make(chan struct{})
		_, last := server(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Probe(ctx, last); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the deadline's", err)
		}
	})
}

// TestProbeProof: an edge that judges its probes answers one with the proof it allows and
// turns away the rest with the 404 of a path it does not serve.
func TestProbeProof(t *testing.T) {
	allow := func(proof string) bool { return proof == "from a proxy" }
	var me ring.Announcement
	_, known := server(t, probe.Handler(func() (ring.Announcement, bool) { return me, true }, allow))
	me = known
	c := probe.New(nil)
	defer c.Close()
	if _, err := c.Probe(context.Background(), known); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("an unsigned probe: %v, want 404", err)
	}
	c.Sign = func() string { return "from a proxy" }
	if _, err := c.Probe(context.Background(), known); err != nil {
		t.Fatalf("a signed probe: %v", err)
	}
}

// TestProbeOverTLS: a client made with a TLS configuration probes an edge that serves TLS,
// verifying its certificate; a plain client cannot, and neither can one that does not trust
// the edge's CA.
func TestProbeOverTLS(t *testing.T) {
	mux := http.NewServeMux()
	var known ring.Announcement
	mux.Handle("GET "+probe.Path, probe.Handler(func() (ring.Announcement, bool) { return known, true }, nil))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	known = edgeAt(srv.Listener.Addr().String())
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	c := probe.New(&tls.Config{RootCAs: roots})
	defer c.Close()
	if _, err := c.Probe(context.Background(), known); err != nil {
		t.Fatalf("probe over TLS: %v", err)
	}
	plain := probe.New(nil)
	defer plain.Close()
	if _, err := plain.Probe(context.Background(), known); err == nil {
		t.Error("a plain probe of an edge that serves TLS succeeded")
	}
	untrusting := probe.New(&tls.Config{RootCAs: x509.NewCertPool()})
	defer untrusting.Close()
	if _, err := untrusting.Probe(context.Background(), known); err == nil {
		t.Error("a probe that does not trust the edge's CA succeeded")
	}
}
