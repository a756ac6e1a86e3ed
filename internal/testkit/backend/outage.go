package backend

import (
	"sync"
	"testing"

	"github.com/weft-edge/weft/pubsub"
)

// Restartable is an embedded NATS server with JetStream on a fixed loopback port and store that
// a test can stop and start again: a NATS outage on demand. What connects to it by URL (a bus
// made with Bus from Embedded before the outage, a plain client) reconnects by itself when it
// is back, and the stream survives (file storage).
type Restartable struct {
	t    testing.TB
	dir  string
	port int

	mu  sync.Mutex
	cur *pubsub.Embedded // nil while stopped
}

// RestartableNATS starts a Restartable, shut down at cleanup.
func RestartableNATS(t testing.TB) *Restartable {
	t.Helper()
	r := &Restartable{t: t, dir: t.TempDir()}
	r.Start()
	r.port = r.cur.Port()
	t.Cleanup(r.Stop)
	return r
}

// Embedded is the running server (connect buses to it with Bus); nil while stopped.
func (r *Restartable) Embedded() *pubsub.Embedded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// URL is the server's client URL, the same across restarts.
func (r *Restartable) URL() string { return r.Embedded().ClientURL() }

// Stop shuts the server down; clients see their connection drop. Idempotent.
func (r *Restartable) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil {
		r.cur.Shutdown()
		r.cur = nil
	}
}

// Start starts the server again on the same port and store. Idempotent.
func (r *Restartable) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil {
		return
	}
	emb, err := pubsub.NewEmbedded(pubsub.EmbeddedConfig{Host: "127.0.0.1", Port: r.port, StoreDir: r.dir})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := emb.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cur = emb
}
