package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/pubsub"
)

// natsOpts are the flags every command that talks to NATS shares.
type natsOpts struct {
	url   string
	addr  string
	store string

	// stream, set by the stream's owner (from its validated streamOpts) before connect,
	// makes the bus create the stream when missing; nil: the bus only uses it.
	stream *pubsub.StreamConfig
	// updateStream is --stream-update.
	updateStream bool
}

func (o *natsOpts) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "nats", "", "NATS server or cluster URL(s), comma-separated; empty starts an embedded NATS server with JetStream")
	fs.StringVar(&o.addr, "nats-addr", "127.0.0.1:4222", "where the embedded NATS server listens (host:port; port 0 = any free port)")
	fs.StringVar(&o.store, "nats-store", "", "JetStream store directory of the embedded server; empty = a temp dir removed at exit")
}

// connect returns a bus on the configured NATS, starting the embedded server when no URL is
// given, and a function that closes both.
func (o *natsOpts) connect(ctx context.Context, log *slog.Logger, name string) (*pubsub.Bus, *pubsub.Embedded, func(), error) {
	cfg := pubsub.Config{URL: o.url, Name: name, Logger: log}
	if o.stream != nil {
		cfg.ManageStream, cfg.Stream, cfg.UpdateStream = true, *o.stream, o.updateStream
	}
	var emb *pubsub.Embedded
	if o.url == "" {
		host, portStr, err := net.SplitHostPort(o.addr)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--nats-addr: %w", err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--nats-addr: bad port %q", portStr)
		}
		emb, err = pubsub.NewEmbedded(pubsub.EmbeddedConfig{Host: host, Port: port, StoreDir: o.store, Logger: log})
		if err != nil {
			return nil, nil, nil, err
		}
		if err := emb.Start(); err != nil {
			return nil, nil, nil, fmt.Errorf("embedded NATS: %w", err)
		}
		cfg.Embedded = emb
	}
	bus, err := pubsub.Connect(ctx, cfg)
	if err != nil {
		if emb != nil {
			emb.Shutdown()
		}
		return nil, nil, nil, err
	}
	closeAll := func() {
		bus.Close()
		if emb != nil {
			emb.Shutdown()
		}
	}
	return bus, emb, closeAll, nil
}

// streamOpts are the flags of the WEFT_EVENTS stream's owner (`weft origin`, `weft dev`); edges
// and the proxy only use the stream (see pubsub.Config.ManageStream).
type streamOpts struct {
	maxAge        time.Duration
	maxPerSubject int64
	replicas      int
	maxBytes      string
	update        bool
}

func (o *streamOpts) flags(fs *flag.FlagSet) {
	fs.DurationVar(&o.maxAge, "stream-max-age", 24*time.Hour, "how long the "+pubsub.StreamName+" stream keeps events (how far back resume and gap filling reach); used when this process creates the stream")
	fs.Int64Var(&o.maxPerSubject, "stream-max-per-subject", 100_000, "events the stream keeps per team; -1 = no cap")
	fs.IntVar(&o.replicas, "stream-replicas", 1, "copies of the stream in a JetStream cluster, 1 to 5")
	fs.StringVar(&o.maxBytes, "stream-max-bytes", "0", "cap on the stream's size (bytes, or with KiB/MiB/GiB); the oldest events go first; 0 = no cap")
	fs.BoolVar(&o.update, "stream-update", false, "update an existing stream whose settings differ from these flags (without it: one warning, the stream is kept)")
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
	return pubsub.StreamConfig{MaxAge: o.maxAge, MaxMsgsPerSubject: o.maxPerSubject, Replicas: o.replicas, MaxBytes: maxBytes}, nil
}
