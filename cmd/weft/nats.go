package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/natsconn"
	"github.com/weft-edge/weft/pubsub"
)

// natsOpts are the flags every command that talks to NATS shares: how to reach it (natsconn:
// seed URLs, TLS, credentials) and, without --nats, the embedded server's address and store.
type natsOpts struct {
	conn     natsconn.Options
	addr     string
	store    string
	domain   string
	fallback string

	// stream, set by the stream's owner (from its validated streamOpts) before connect,
	// makes the bus create the stream when missing; nil: the bus only uses it.
	stream *pubsub.StreamConfig
	// updateStream is --stream-update.
	updateStream bool
	// started, set by `weft dev --regions`, is an embedded server the caller started (and
	// shuts down) for connect to use instead of starting one.
	started *pubsub.Embedded
}

// flags registers the NATS flags; urlsUsage says what --nats (and its absence) means to the
// command.
func (o *natsOpts) flags(fs *flag.FlagSet, urlsUsage string) {
	o.conn.Flags(fs, urlsUsage)
	fs.StringVar(&o.addr, "nats-addr", "127.0.0.1:4222", "where the embedded NATS server listens (host:port; port 0 = any free port)")
	fs.StringVar(&o.store, "nats-store", "", "JetStream store directory of the embedded server; empty = a temp dir removed at exit")
	fs.StringVar(&o.fallback, "nats-fallback-domain", "", "JetStream domain of the stream of record (the home region's hub), read across the WAN for events this process's own copy of the stream lacks or has not stored a second after live messages showed them (a region's mirror resuming after a partition); empty = wait for the own copy")
	fs.StringVar(&o.domain, "nats-domain", "", "JetStream domain of the "+pubsub.StreamName+" stream this process uses; empty = the JetStream of the NATS server it connects to (an edge on its region's leaf node reads the region's mirror with no setting)")
}

// connect validates the NATS flags and returns a bus on the configured NATS, starting the
// embedded server when no URL is given, and a function that closes both.
func (o *natsOpts) connect(ctx context.Context, log *slog.Logger, name string) (*pubsub.Bus, *pubsub.Embedded, func(), error) {
	if err := o.conn.Validate(); err != nil {
		return nil, nil, nil, err
	}
	if (o.domain != "" || o.fallback != "") && o.conn.URLs == "" {
		return nil, nil, nil, errors.New("--nats-domain and --nats-fallback-domain need --nats: the embedded NATS server has no JetStream domain")
	}
	cfg := pubsub.Config{NATS: o.conn, Name: name, Logger: log, Domain: o.domain, FallbackDomain: o.fallback}
	if o.stream != nil {
		cfg.ManageStream, cfg.Stream, cfg.UpdateStream = true, *o.stream, o.updateStream
	}
	var emb, owned *pubsub.Embedded
	switch {
	case o.started != nil:
		emb = o.started
	case o.conn.URLs == "":
		var err error
		if emb, err = o.startEmbedded(pubsub.EmbeddedConfig{Logger: log}); err != nil {
			return nil, nil, nil, err
		}
		owned = emb
	}
	cfg.Embedded = emb
	bus, err := pubsub.Connect(ctx, cfg)
	if err != nil {
		if owned != nil {
			owned.Shutdown()
		}
		return nil, nil, nil, err
	}
	closeAll := func() {
		bus.Close()
		if owned != nil {
			owned.Shutdown()
		}
	}
	return bus, emb, closeAll, nil
}

// startEmbedded starts an embedded NATS server on --nats-addr with --nats-store and what cfg
// adds (a JetStream domain, leaf nodes).
func (o *natsOpts) startEmbedded(cfg pubsub.EmbeddedConfig) (*pubsub.Embedded, error) {
	host, portStr, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, fmt.Errorf("--nats-addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--nats-addr: bad port %q", portStr)
	}
	if port != 0 {
		// The NATS server reports a port it cannot take only by never becoming ready (a
		// 10 s wait); a listen of our own says it at once. The port is released again at once:
		// a process that takes it in between still fails, only later.
		ln, err := net.Listen("tcp", o.addr)
		if err != nil {
			return nil, fmt.Errorf("--nats-addr %s: the embedded NATS server cannot listen there (%v); "+
				"if a NATS server runs there already, pass --nats nats://%s to use it", o.addr, err, o.addr)
		}
		ln.Close()
	}
	cfg.Host, cfg.Port, cfg.StoreDir = host, port, o.store
	emb, err := pubsub.NewEmbedded(cfg)
	if err != nil {
		return nil, err
	}
	if err := emb.Start(); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	return emb, nil
}

// embeddedEdge checks the NATS flags of `weft edge`: an edge needs the NATS its origin
// publishes to, so without --nats it refuses to start unless told --embedded-nats. An
// embedded server of its own would otherwise start empty and silent: the edge would serve
// each team as loaded and never see another event. With --embedded-nats the edge is the
// server's only owner and creates the events stream there (default limits), as the origin
// does on its own embedded server.
func (o *natsOpts) embeddedEdge(embedded bool) error {
	switch {
	case embedded && o.conn.URLs != "":
		return errors.New("--embedded-nats and --nats: give one (--nats reaches the NATS the origin publishes to; --embedded-nats runs one in this edge)")
	case embedded:
		o.stream = &pubsub.StreamConfig{}
	case o.conn.URLs == "":
		return errors.New("--nats is not set: an edge needs the NATS its origin publishes to (--nats nats://host:4222); " +
			"an embedded NATS of its own would never see the origin's events. Pass --embedded-nats to run one anyway " +
			"(the origin must then publish to it, on --nats-addr), or use weft dev")
	}
	return nil
}

// streamOpts are the flags of the WEFT_EVENTS stream's owner (`weft origin`, `weft dev`); edges
// and the proxy only use the stream (see pubsub.Config.ManageStream).
type streamOpts struct {
	maxAge        time.Duration
	maxPerSubject int64
	replicas      int
	maxBytes      string
	dupWindow     time.Duration
	update        bool
	mirrors       string
	mirrorRepl    int
}

func (o *streamOpts) flags(fs *flag.FlagSet) {
	fs.DurationVar(&o.maxAge, "stream-max-age", 24*time.Hour, "how long the "+pubsub.StreamName+" stream keeps events (how far back resume and gap filling reach); used when this process creates the stream")
	fs.Int64Var(&o.maxPerSubject, "stream-max-per-subject", 100_000, "events the stream keeps per team; -1 = no cap")
	fs.IntVar(&o.replicas, "stream-replicas", 1, "copies of the stream in a JetStream cluster, 1 to 5")
	fs.StringVar(&o.maxBytes, "stream-max-bytes", "0", "cap on the stream's size (bytes, or with KiB/MiB/GiB); the oldest events go first; 0 = no cap")
	fs.DurationVar(&o.dupWindow, "stream-duplicate-window", 2*time.Minute, "how long the stream remembers an event's id to drop a retried publish (the origin retries what a NATS outage left unacknowledged); cut to --stream-max-age when longer")
	fs.BoolVar(&o.update, "stream-update", false, "update an existing stream whose settings differ from these flags (without it: one warning, the stream is kept)")
	fs.StringVar(&o.mirrors, "stream-mirrors", "", "JetStream domains of edge regions (their NATS leaf nodes), comma-separated, in each of which this process keeps a mirror of the stream for the region's edges; the stream's own JetStream needs a domain too (docs/architecture.md, Regions)")
	fs.IntVar(&o.mirrorRepl, "stream-mirror-replicas", 1, "copies of each region's mirror in its region's JetStream, 1 to 5")
}

// config validates the flags (before any connection to NATS) and returns the stream's limits.
func (o *streamOpts) config() (pubsub.StreamConfig, error) {
	var c pubsub.StreamConfig
	if o.maxAge <= 0 {
		return c, fmt.Errorf("--stream-max-age: want more than 0, got %s", o.maxAge)
	}
	if o.maxPerSubject == 0 || o.maxPerSubject < -1 {
		return c, fmt.Errorf("--stream-max-per-subject: want at least 1, or -1 for no cap, got %d", o.maxPerSubject)
	}
	if o.replicas < 1 || o.replicas > pubsub.MaxReplicas {
		return c, fmt.Errorf("--stream-replicas: want 1 to %d, got %d", pubsub.MaxReplicas, o.replicas)
	}
	maxBytes, err := cli.ParseBytes(o.maxBytes)
	if err != nil {
		return c, fmt.Errorf("--stream-max-bytes: %w", err)
	}
	if maxBytes < 0 {
		return c, fmt.Errorf("--stream-max-bytes: want 0 (no cap) or more, got %s", o.maxBytes)
	}
	if o.dupWindow < pubsub.MinDuplicateWindow {
		return c, fmt.Errorf("--stream-duplicate-window: want %v or more, got %s", pubsub.MinDuplicateWindow, o.dupWindow)
	}
	if o.mirrorRepl < 1 || o.mirrorRepl > pubsub.MaxReplicas {
		return c, fmt.Errorf("--stream-mirror-replicas: want 1 to %d, got %d", pubsub.MaxReplicas, o.mirrorRepl)
	}
	var mirrors []string
	for _, d := range strings.Split(o.mirrors, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		if strings.ContainsAny(d, ".*> \t") {
			return c, fmt.Errorf("--stream-mirrors: %q is not a JetStream domain (a name without dots, wildcards or spaces)", d)
		}
		if slices.Contains(mirrors, d) {
			return c, fmt.Errorf("--stream-mirrors: %q given twice", d)
		}
		mirrors = append(mirrors, d)
	}
	return pubsub.StreamConfig{MaxAge: o.maxAge, MaxMsgsPerSubject: o.maxPerSubject, Replicas: o.replicas, MaxBytes: maxBytes,
		DuplicateWindow: o.dupWindow, Mirrors: mirrors, MirrorReplicas: o.mirrorRepl}, nil
}
