// Package tlsfiles is TLS from files for weft's listeners and the connections they make:
// a certificate and key that are read again when they change on disk (a renewal by
// cert-manager, certbot or a mounted Secret), so that the next handshake serves the new one
// while connections already up keep theirs, and the flags that name those files.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Pair is a certificate chain and its key, read from two PEM files and read again, at the
// next handshake, once either file changed. A pair that fails to read (the files replaced one
// at a time, the key not yet written) keeps the one that last worked and is tried again at
// the next handshake: a renewal never takes the listener down.
type Pair struct {
	name              string // which listener or connection, for logs and metrics
	certFile, keyFile string
	log               *slog.Logger
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             [2]fileStamp
	failedAt          [2]fileStamp // the stamp of the last failed read, logged once
	reloads, failures prometheus.Counter
	expiry            prometheus.GaugeFunc
}

// fileStamp is what tells a file changed: a rename over it (a new inode) or a write in place
// (size, mtime).
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path) // follows symlinks: a Kubernetes Secret swaps a ..data link
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), uint64(sys.Ino)
	}
	return st, nil
}

// LoadPair reads certFile and keyFile; name says which listener or connection uses them
// ("client", "edges"), in logs and metrics. An error names the files.
func LoadPair(name, certFile, keyFile string, log *slog.Logger) (*Pair, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pair{name: name, certFile: certFile, keyFile: keyFile, log: log}
	st, err := p.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := p.read()
	if err != nil {
		return nil, err
	}
	p.cert, p.stamp = cert, st
	p.reloads = prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_tls_reloads_total",
		Help:        "Certificate reloads after its files changed on disk, by result (error: the files did not make a pair; the last good one is still served).",
		ConstLabels: prometheus.Labels{"listener": name, "result": "ok"}})
	p.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_tls_reloads_total",
		Help:        "Certificate reloads after its files changed on disk, by result (error: the files did not make a pair; the last good one is still served).",
		ConstLabels: prometheus.Labels{"listener": name, "result": "error"}})
	p.expiry = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_tls_certificate_expiry_timestamp_seconds",
		Help:        "When the certificate served now expires (its NotAfter, Unix seconds).",
		ConstLabels: prometheus.Labels{"listener": name}}, p.notAfter)
	return p, nil
}

func (p *Pair) stamps() ([2]fileStamp, error) {
	var st [2]fileStamp
	var err error
	if st[0], err = stampOf(p.certFile); err != nil {
		return st, fmt.Errorf("TLS certificate: %w", err)
	}
	if st[1], err = stampOf(p.keyFile); err != nil {
		return st, fmt.Errorf("TLS key: %w", err)
	}
	return st, nil
}

// read parses the pair and its leaf, refusing one that has already expired.
func (p *Pair) read() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", p.certFile, p.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", p.certFile, err)
		}
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("TLS certificate %s expired at %s", p.certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// Current is the pair to serve now: the files' latest if they changed and make a pair, else
// the last that did. A stat of each file per handshake is the price (a microsecond beside a
// handshake's hundreds); it buys a renewal that takes effect at once, with no watcher to own.
func (p *Pair) Current() *tls.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.stamps()
	if err == nil && st == p.failedAt {
		return p.cert // the same broken files as at the last look: not read again per handshake
	}
	if err != nil || st == p.stamp {
		if err != nil && st != p.failedAt {
			p.failedAt = st
			p.log.Warn("TLS files unreadable: serving the last good certificate", "tls", p.name, "err", err)
		}
		return p.cert
	}
	cert, err := p.read()
	if err != nil {
		if st != p.failedAt { // once per change of the files, not per handshake
			p.failedAt = st
			p.failures.Inc()
			p.log.Warn("TLS files changed but do not make a pair: serving the last good certificate", "tls", p.name, "err", err)
		}
		return p.cert
	}
	p.cert, p.stamp = cert, st
	p.reloads.Inc()
	p.log.Info("TLS certificate reloaded", "tls", p.name, "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return cert
}

func (p *Pair) notAfter() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.cert.Leaf.NotAfter.Unix())
}

// Collectors are the pair's metrics, for the process's registry.
func (p *Pair) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.reloads, p.failures, p.expiry}
}

// ReadPool reads a PEM file of CA certificates.
func ReadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// ServerConfig is the TLS of a listener serving p, reloaded per handshake; clientCAs, when not
// nil, must have signed the certificate every client presents (mutual TLS). HTTP/1.1 only:
// WebSocket upgrades need it, and weft serves nothing over HTTP/2.
func ServerConfig(p *Pair, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.Current(), nil },
	}
	if clientCAs != nil {
		c.ClientCAs, c.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	return c
}

// ClientConfig is the TLS of connections weft makes to its other components: roots verify the
// server (nil: the system's), serverName overrides the name checked ("" : the host dialed),
// and p, when not nil, is the client certificate presented (reloaded per handshake).
func ClientConfig(roots *x509.CertPool, serverName string, p *Pair) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: serverName, NextProtos: []string{"http/1.1"}}
	if p != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return p.Current(), nil }
	}
	return c
}

// errHalf is the error of a certificate given without its key, or the other way round.
var errHalf = errors.New("give both or neither")
