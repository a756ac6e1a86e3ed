package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/weft-edge/weft/pubsub"
)

// natsOpts are the flags every command that talks to NATS shares.
type natsOpts struct {
	url   string
	addr  string
	store string
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
