package proxy

import (
	"net"
	"sync"
	"time"

	"github.com/weft-edge/weft/internal/bucket"
)

// PaceAccepts wraps the proxy's listener so that it accepts new TCP connections at most at
// Config.AcceptRate (burst AcceptBurst); the rest wait in the kernel's accept queue, and when
// that is full the kernel drops their SYNs and TCP's own retransmission spreads them.
//
// This is what keeps a reconnect herd from stalling the connections already open. Refusing a
// connection (429) still costs a goroutine, a read of its request and a token check; when
// thousands arrive in the same quarter second (an edge crashed, and every one of its clients
// saw the RST at once), that work queues in the Go scheduler ahead of the bytes of every
// established tunnel, and undisturbed clients wait hundreds of milliseconds. Paced at accept,
// the herd costs the proxy nothing until its turn; the tunnels keep their CPU.
func (s *Server) PaceAccepts(ln net.Listener) net.Listener {
	if s.cfg.AcceptRate < 0 {
		return ln
	}
	return &pacedListener{Listener: ln, b: bucket.New(s.cfg.AcceptRate, s.cfg.AcceptBurst),
		closed: make(chan struct{}), waited: s.metrics.acceptWaits.Inc}
}

type pacedListener struct {
	net.Listener
	b      *bucket.Bucket
	closed chan struct{}
	once   sync.Once
	waited func()
}

func (l *pacedListener) Accept() (net.Conn, error) {
	for {
		ok, wait := l.b.Take(bucket.Now())
		if ok {
			return l.Listener.Accept()
		}
		l.waited()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

func (l *pacedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
