package proxycmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weft-edge/weft/internal/sleep"
)

// connectNATS connects to the NATS at natsURL (comma-separated URLs of a cluster) under name,
// for the proxy to hear the edges' announcements (ring.Announcements) and nothing more. It is
// not pubsub.Connect on purpose: that one links the embedded NATS server and creates or
// updates the JetStream stream of events, which belongs to the edges and the origin; a proxy
// must not change its limits.
//
// The connection behaves as pubsub's does: it is named, and once connected it reconnects by
// itself forever, until closed. At start a NATS that is not there yet (a proxy started before
// it) is retried with a growing pause until ctx ends, each failure logged; a URL that cannot
// be parsed fails at once, since waiting will not mend it.
func connectNATS(ctx context.Context, natsURL, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("proxy: disconnected from NATS, reconnecting; the ring stays as it was until edges are heard again", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("proxy: reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("proxy: NATS error", "err", err)
		}),
	}
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(natsURL, opts...)
		if err == nil {
			log.Info("proxy: connected to NATS", "url", nc.ConnectedUrlRedacted())
			return nc, nil
		}
		if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
			return nil, fmt.Errorf("--nats: %w", err)
		}
		log.Warn("proxy: connecting to NATS", "url", redacted(natsURL), "attempt", attempt+1, "err", err)
		if werr := sleep.For(ctx, backoff(attempt)); werr != nil {
			return nil, fmt.Errorf("NATS at %s not reached: %w (last error: %v)", redacted(natsURL), werr, err)
		}
	}
}

// backoff is the pause before connect attempt attempt+2: 50ms doubling to 5s, the upper half
// jittered so that proxies started together do not retry in step (pubsub's schedule).
func backoff(attempt int) time.Duration {
	d := min(50*time.Millisecond<<min(attempt, 7), 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// redacted is natsURL with the passwords of its URLs hidden, for logs and errors.
func redacted(natsURL string) string {
	parts := strings.Split(natsURL, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
