package tlsfiles

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerFlags are the TLS flags of a listener: --tls-cert, --tls-key, --tls-client-ca.
type ServerFlags struct {
	Cert, Key, ClientCA string
}

// Flags adds them to fs; who says who connects ("clients and proxies").
func (f *ServerFlags) Flags(fs *flag.FlagSet, who string) {
	fs.StringVar(&f.Cert, "tls-cert", "", "PEM certificate chain to serve TLS with to "+who+" (with --tls-key); read again when the file changes, for the next connection; empty: plain TCP")
	fs.StringVar(&f.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.ClientCA, "tls-client-ca", "", "PEM CA certificates: with TLS, every client must present a certificate they signed (mutual TLS); empty: none asked")
}

// Check validates the flags without reading the files.
func (f *ServerFlags) Check() error {
	switch {
	case (f.Cert == "") != (f.Key == ""):
		return fmt.Errorf("--tls-cert, --tls-key: %w", errHalf)
	case f.ClientCA != "" && f.Cert == "":
		return fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for in a TLS handshake")
	}
	return nil
}

// Enabled reports whether TLS was asked for.
func (f *ServerFlags) Enabled() bool { return f.Cert != "" }

// Config reads the files and returns the listener's TLS and its metrics, or nil, nil, nil
// without --tls-cert. An error names the flag.
func (f *ServerFlags) Config(log *slog.Logger) (*tls.Config, []prometheus.Collector, error) {
	if err := f.Check(); err != nil || !f.Enabled() {
		return nil, nil, err
	}
	p, err := LoadPair("client", f.Cert, f.Key, log)
	if err != nil {
		return nil, nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
	}
	c := ServerConfig(p, nil)
	if f.ClientCA != "" {
		pool, err := ReadPool(f.ClientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		c = ServerConfig(p, pool)
	}
	return c, p.Collectors(), nil
}

// Scheme is the URL scheme of a listener with TLS c (nil: plain), for what a process prints:
// "http" or "https", and with ws, "ws" or "wss".
func Scheme(c *tls.Config, ws bool) string {
	switch {
	case ws && c != nil:
		return "wss"
	case ws:
		return "ws"
	case c != nil:
		return "https"
	}
	return "http"
}

// Listen listens on addr, with TLS when c is not nil.
func Listen(addr string, c *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || c == nil {
		return ln, err
	}
	return tls.NewListener(ln, c), nil
}

// ClientFlags are the TLS flags of the connections a process makes to another component:
// --<prefix>-tls, --<prefix>-ca, --<prefix>-server-name, --<prefix>-cert, --<prefix>-key.
type ClientFlags struct {
	prefix                           string
	On                               bool
	CA, ServerName, Cert, Key        string
	caFlag, nameFlag, certFlag, keyF string
}

// Flags adds them to fs; peer names what is dialed ("edges").
func (f *ClientFlags) Flags(fs *flag.FlagSet, prefix, peer string) {
	f.prefix = prefix
	f.caFlag, f.nameFlag, f.certFlag, f.keyF = "--"+prefix+"-ca", "--"+prefix+"-server-name", "--"+prefix+"-cert", "--"+prefix+"-key"
	fs.BoolVar(&f.On, prefix+"-tls", false, "reach "+peer+" over TLS (they serve it with --tls-cert)")
	fs.StringVar(&f.CA, prefix+"-ca", "", "PEM CA certificates that sign the "+peer+"' certificates; empty: the system's roots")
	fs.StringVar(&f.ServerName, prefix+"-server-name", "", "name the "+peer+"' certificates must carry; empty: the host each is dialed at (its announced address)")
	fs.StringVar(&f.Cert, prefix+"-cert", "", "PEM client certificate presented to the "+peer+" (their --tls-client-ca), with "+"--"+prefix+"-key; read again when it changes")
	fs.StringVar(&f.Key, prefix+"-key", "", "PEM private key of --"+prefix+"-cert")
}

// Check validates the flags without reading the files.
func (f *ClientFlags) Check() error {
	if (f.Cert == "") != (f.Key == "") {
		return fmt.Errorf("%s, %s: %w", f.certFlag, f.keyF, errHalf)
	}
	if !f.On && (f.CA != "" || f.ServerName != "" || f.Cert != "") {
		return fmt.Errorf("%s, %s and %s need --%s-tls", f.caFlag, f.nameFlag, f.certFlag, f.prefix)
	}
	return nil
}

// Config reads the files and returns the connections' TLS and its metrics, or nil, nil, nil
// without --<prefix>-tls.
func (f *ClientFlags) Config(log *slog.Logger) (*tls.Config, []prometheus.Collector, error) {
	if err := f.Check(); err != nil || !f.On {
		return nil, nil, err
	}
	c := ClientConfig(nil, f.ServerName, nil)
	if f.CA != "" {
		pool, err := ReadPool(f.CA)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.caFlag, err)
		}
		c.RootCAs = pool
	}
	var metrics []prometheus.Collector
	if f.Cert != "" {
		p, err := LoadPair(f.prefix, f.Cert, f.Key, log)
		if err != nil {
			return nil, nil, fmt.Errorf("%s, %s: %w", f.certFlag, f.keyF, err)
		}
		c = ClientConfig(c.RootCAs, f.ServerName, p)
		metrics = p.Collectors()
	}
	return c, metrics, nil
}
