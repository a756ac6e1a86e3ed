// Package backend is what a weft node stands on, in the test's process: an embedded NATS
// server with JetStream, and the reference origin over HTTP on a synthetic world. The cache,
// edge, client and proxy tests build their harnesses from it; it imports neither edge nor
// proxy, so edge's own (internal) tests can use it. Tests only.
//
// The reference origin is used here and nowhere else in the test kit: where it lives changes
// in one place.
package backend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

// ServiceToken is the token the test origin asks of its clients.
const ServiceToken = "svc"

// NATS starts an embedded NATS server with JetStream, shut down at cleanup. It opens no port:
// the test's buses connect to it in-process (no port to collide with a parallel test's).
func NATS(t testkit.T) *pubsub.Embedded {
	t.Helper()
	return startNATS(t, pubsub.EmbeddedConfig{NoListen: true})
}

// ListeningNATS is NATS on a free loopback port, for what connects by URL (a command's --nats
// flag, a plain NATS client): shut down at cleanup.
func ListeningNATS(t testkit.T) *pubsub.Embedded {
	t.Helper()
	return startNATS(t, pubsub.EmbeddedConfig{})
}

func startNATS(t testkit.T, cfg pubsub.EmbeddedConfig) *pubsub.Embedded {
	t.Helper()
	emb, err := pubsub.NewEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := emb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	return emb
}

// Conn is a plain NATS client of emb (a ListeningNATS), closed at cleanup (before emb is shut
// down: cleanups run last added first).
func Conn(t testkit.T, emb *pubsub.Embedded) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Bus connects to emb with cfg (its Embedded set here) as the stream's owner (ManageStream:
// every test bus may be the first on its server), closed at cleanup. A test of a bus that only
// uses the stream calls pubsub.Connect itself.
func Bus(t testkit.T, emb *pubsub.Embedded, cfg pubsub.Config) *pubsub.Bus {
	t.Helper()
	cfg.Embedded = emb
	cfg.ManageStream = true
	b, err := pubsub.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// World is the synthetic world of size ("tiny", "small", … as reference.SizeByName) from seed.
// Worlds are deterministic: the same seed and size give the same teams, users and channels.
func World(t testkit.T, seed int64, size string) *reference.World {
	t.Helper()
	sz, err := reference.SizeByName(size)
	if err != nil {
		t.Fatal(err)
	}
	w, err := reference.NewWorld(seed, sz)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// OriginConfig configures NewOrigin.
type OriginConfig struct {
	// World is what the origin serves; required.
	World *reference.World
	// Publisher publishes the origin's events (the test's bus); nil: published nowhere.
	Publisher origin.Publisher
	// Client configures Origin.Client; BaseURL and Token are filled in.
	Client origin.ClientConfig
	// FlushEvery, when set, republishes events whose publish failed that often (the server's
	// KeepFlushing, as `weft origin` runs it), until cleanup.
	FlushEvery time.Duration
}

// Origin is the reference origin behind an httptest server on a loopback port, and a client
// for it. Every request is counted, and a test may put a handler in front (SetWrap).
type Origin struct {
	*reference.Server
	HTTP   *httptest.Server
	Client *origin.Client

	requests atomic.Int64
	wrap     atomic.Pointer[func(w http.ResponseWriter, r *http.Request, next http.Handler)]
}

// NewOrigin starts the origin, closed at cleanup.
func NewOrigin(t testkit.T, cfg OriginConfig) *Origin {
	t.Helper()
	srv, err := reference.NewServer(reference.ServerConfig{World: cfg.World, Token: ServiceToken, Publisher: cfg.Publisher})
	if err != nil {
		t.Fatal(err)
	}
	o := &Origin{Server: srv}
	o.HTTP = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		if f := o.wrap.Load(); f != nil {
			(*f)(w, r, o.Server)
			return
		}
		o.Server.ServeHTTP(w, r)
	}))
	t.Cleanup(o.HTTP.Close)
	if cfg.FlushEvery > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.KeepFlushing(ctx, cfg.FlushEvery)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	cc := cfg.Client
	cc.BaseURL, cc.Token = o.HTTP.URL, ServiceToken
	if o.Client, err = origin.NewClient(cc); err != nil {
		t.Fatal(err)
	}
	return o
}

// Requests is how many HTTP requests reached the origin.
func (o *Origin) Requests() int64 { return o.requests.Load() }

// SetWrap puts f in front of the origin (counting, holding, corrupting requests); nil removes it.
func (o *Origin) SetWrap(f func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	if f == nil {
		o.wrap.Store(nil)
		return
	}
	o.wrap.Store(&f)
}
