package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures an in-process NATS server. JetStream is always on. The zero value
// is a loopback server on a random port with its store in a temporary directory.
type EmbeddedConfig struct {
	// StoreDir is where JetStream keeps its files. "" = a temporary directory that Shutdown
	// removes. A server started again on the same StoreDir finds its streams and messages.
	StoreDir string

	// Host is the address to listen on. "" = 127.0.0.1: the embedded server never listens
	// beyond loopback unless asked to.
	Host string

	// Port is the client port. 0 = a random free port (read it back with Port or ClientURL).
	Port int

	// NoListen starts no TCP listener: only clients of this process can connect, in-process
	// (Connect does so when Config.Embedded is set). Such connections cannot follow a restart.
	NoListen bool

	// ServerName names the server in logs and monitoring. "" = one the server generates.
	ServerName string

	// Domain is the server's JetStream domain (docs/architecture.md, "Regions"). "" = none.
	Domain string

	// LeafListen makes the server accept NATS leaf node connections on Host at LeafPort
	// (0 = a free port; read it back with LeafAddr), the hub of a region topology. Like
	// no_advertise in a config file, it does not tell leaf nodes about other addresses: a leaf
	// node keeps to the URL it was given (a WAN link in front of the hub).
	LeafListen bool
	LeafPort   int

	// LeafRemotes are the URLs (nats-leaf://host:port) of one server this one connects to as
	// a leaf node, tried in turn and reconnected every second after a loss. Loopback or not,
	// they are the operator's; nil = none.
	LeafRemotes []string

	// Logger receives the server's log, at debug level except warnings and errors.
	// nil = discard.
	Logger *slog.Logger
}

// Embedded is a NATS server with JetStream running inside the process. NewEmbedded validates;
// Start starts; Shutdown stops and waits.
type Embedded struct {
	cfg EmbeddedConfig
	log *slog.Logger

	mu       sync.Mutex // guards everything below
	srv      *server.Server
	storeDir string
	tempDir  bool // storeDir was created by Start and is removed by Shutdown
	leafPort int  // the leaf node port bound, with LeafListen
	started  bool
	stopped  bool
}

// readyTimeout bounds how long Start waits for the server to accept connections.
const readyTimeout = 10 * time.Second

// NewEmbedded checks cfg and returns a server that is not started yet.
func NewEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("pubsub: embedded: port %d out of range", cfg.Port)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if net.ParseIP(cfg.Host) == nil && cfg.Host != "localhost" {
		return nil, fmt.Errorf("pubsub: embedded: host %q is not an IP address", cfg.Host)
	}
	if cfg.LeafPort < 0 || cfg.LeafPort > 65535 {
		return nil, fmt.Errorf("pubsub: embedded: leaf port %d out of range", cfg.LeafPort)
	}
	if cfg.Domain != "" {
		if err := validDomain(cfg.Domain); err != nil {
			return nil, fmt.Errorf("pubsub: embedded: %w", err)
		}
	}
	for _, r := range cfg.LeafRemotes {
		if _, err := leafURL(r); err != nil {
			return nil, err
		}
	}
	if cfg.StoreDir != "" {
		if fi, err := os.Stat(cfg.StoreDir); err == nil && !fi.IsDir() {
			return nil, fmt.Errorf("pubsub: embedded: store dir %q is not a directory", cfg.StoreDir)
		}
	}
	return &Embedded{cfg: cfg, log: loggerOrDiscard(cfg.Logger)}, nil
}

// Start starts the server and returns once it accepts connections with JetStream enabled.
// An Embedded starts once; to restart, make a new one on the same StoreDir and Port.
func (e *Embedded) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return errors.New("pubsub: embedded: already started")
	}
	e.started = true

	dir := e.cfg.StoreDir
	if dir == "" {
		d, err := os.MkdirTemp("", "weft-nats-")
		if err != nil {
			return fmt.Errorf("pubsub: embedded: %w", err)
		}
		dir, e.tempDir = d, true
	}
	e.storeDir = dir

	port := e.cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: e.cfg.ServerName,
		Host:       e.cfg.Host,
		Port:       port,
		DontListen: e.cfg.NoListen,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
	}
	opts.JetStreamDomain = e.cfg.Domain
	if e.cfg.LeafListen {
		opts.LeafNode.Host, opts.LeafNode.Port, opts.LeafNode.NoAdvertise = e.cfg.Host, e.cfg.LeafPort, true
		if e.cfg.LeafPort == 0 {
			opts.LeafNode.Port = server.RANDOM_PORT
		}
	}
	if len(e.cfg.LeafRemotes) > 0 {
		var urls []*url.URL
		for _, r := range e.cfg.LeafRemotes {
			u, _ := leafURL(r) // checked by NewEmbedded
			urls = append(urls, u)
		}
		opts.LeafNode.ReconnectInterval = time.Second
		opts.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: urls}}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		e.removeTemp()
		return fmt.Errorf("pubsub: embedded: %w", err)
	}
	srv.SetLoggerV2(serverLogger{e.log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		e.removeTemp()
		return fmt.Errorf("pubsub: embedded: server not ready after %s", readyTimeout)
	}
	e.srv = srv
	if e.cfg.LeafListen {
		// The server wrote the port it bound back into opts before it was ready (under its
		// lock, which ReadyForConnections took after it).
		e.leafPort = opts.LeafNode.Port
	}
	e.log.Info("pubsub: embedded NATS ready", "url", e.clientURL(), "store_dir", dir, "in_process_only", e.cfg.NoListen)
	return nil
}

// Shutdown stops the server, waits until it has stopped and removes the temporary store
// directory it created. It is idempotent and safe on a server that never started.
func (e *Embedded) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	e.stopped = true
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	e.removeTemp()
}

func (e *Embedded) removeTemp() {
	if e.tempDir {
		if err := os.RemoveAll(e.storeDir); err != nil {
			e.log.Warn("pubsub: embedded: removing temporary store", "dir", e.storeDir, "err", err)
		}
		e.tempDir = false
	}
}

// ClientURL is the URL clients of other processes connect to; "" before Start and with
// NoListen.
func (e *Embedded) ClientURL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clientURL()
}

func (e *Embedded) clientURL() string {
	if e.srv == nil || e.cfg.NoListen {
		return ""
	}
	return e.srv.ClientURL()
}

// Port is the client port the server listens on (useful with Port 0), 0 before Start and with
// NoListen.
func (e *Embedded) Port() int {
	u := e.ClientURL()
	if u == "" {
		return 0
	}
	_, p, err := net.SplitHostPort(u[len("nats://"):])
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// LeafAddr is the host:port leaf nodes connect to (with LeafListen), "" before Start.
func (e *Embedded) LeafAddr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil || e.leafPort == 0 {
		return ""
	}
	return net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.leafPort))
}

// LeafConnections is how many leaf node connections the server has now: on a leaf node, 1
// once it is connected to its hub.
func (e *Embedded) LeafConnections() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil || e.stopped {
		return 0
	}
	return e.srv.NumLeafNodes()
}

// regional says whether the server is part of a region topology (a JetStream domain or leaf
// nodes): only then can a bus on it name another domain. cfg does not change after NewEmbedded.
func (e *Embedded) regional() bool {
	return e.cfg.Domain != "" || e.cfg.LeafListen || len(e.cfg.LeafRemotes) > 0
}

// leafURL parses a leaf node remote URL.
func leafURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "nats-leaf" && u.Scheme != "nats") {
		return nil, fmt.Errorf("pubsub: embedded: leaf remote %q: want nats-leaf://host:port", s)
	}
	return u, nil
}

// StoreDir is the directory JetStream stores into ("" before Start).
func (e *Embedded) StoreDir() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.storeDir
}

// connectTarget says how Connect reaches the server: a URL, plus an in-process provider when the
// server does not listen.
func (e *Embedded) connectTarget() (url string, opt nats.Option, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil || e.stopped {
		return "", nil, errors.New("pubsub: embedded server not running")
	}
	if e.cfg.NoListen {
		// The URL only satisfies option parsing: the in-process provider is what connects.
		return "nats://in-process:4222", nats.InProcessServer(e.srv), nil
	}
	return e.srv.ClientURL(), nil, nil
}

// serverLogger adapts nats-server's logger to slog. The server's notices (its start-up banner)
// go to debug: the embedding process logs one line of its own.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) logf(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if s.l.Enabled(ctx, level) {
		s.l.Log(ctx, level, "nats-server: "+fmt.Sprintf(format, v...))
	}
}

func (s serverLogger) Noticef(format string, v ...any) { s.logf(slog.LevelDebug, format, v) }
func (s serverLogger) Warnf(format string, v ...any)   { s.logf(slog.LevelWarn, format, v) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.logf(slog.LevelError, format, v) }
func (s serverLogger) Errorf(format string, v ...any)  { s.logf(slog.LevelError, format, v) }
func (s serverLogger) Debugf(format string, v ...any)  { s.logf(slog.LevelDebug, format, v) }
func (s serverLogger) Tracef(format string, v ...any)  { s.logf(slog.LevelDebug-4, format, v) }

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
