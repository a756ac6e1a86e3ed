package proxycmd

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/weft-edge/weft/internal/natsconn"
)

// connectNATS connects the proxy to the NATS of o, for it to hear the edges' announcements
// (ring.Announcements) and nothing more; m gets the connection's metrics. It is not
// pubsub.Connect on purpose: that one links the embedded NATS server and opens the JetStream
// stream of events, which belongs to the origin side; a proxy has no use for it.
//
// The connection is every weft process's (natsconn): named, validated, retried at start until
// ctx ends, then reconnecting by itself forever, until closed.
func connectNATS(ctx context.Context, o natsconn.Options, log *slog.Logger, m *natsconn.Metrics) (*nats.Conn, error) {
	return o.Connect(ctx, natsconn.Client{Name: "weft-proxy", Logger: log, Metrics: m})
}
