package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/weft-edge/weft/internal/sleep"
)

// The connection's timing, the same for every weft process.
const (
	// ReconnectWait is the pause before trying a server again after losing it, plus a random
	// ReconnectJitter (ReconnectJitterTLS over TLS, whose handshakes cost a server more), so
	// that the clients of a restarted server do not come back in step.
	ReconnectWait      = 500 * time.Millisecond
	ReconnectJitter    = 500 * time.Millisecond
	ReconnectJitterTLS = time.Second

	// PingInterval and MaxPingsOutstanding: a server that answers no ping for
	// MaxPingsOutstanding intervals is taken as lost, and the client reconnects elsewhere.
	PingInterval        = 20 * time.Second
	MaxPingsOutstanding = 3
)

// Client is what one connection adds to Options: its name, where it logs, its metrics, and
// the caller's own handlers.
type Client struct {
	// Name is the connection's name the servers show (their connz): weft-edge-<node>, ...
	Name string

	// Logger receives the connection's log: disconnects, reconnects, asynchronous errors.
	// nil = discard.
	Logger *slog.Logger

	// Metrics, when set, counts the connection's slow consumer events and, once Connect has
	// connected, reports the connection (see Metrics).
	Metrics *Metrics

	// OnDisconnect, OnReconnect and OnError run after this package's own handlers (which log
	// and count), on the client library's callback goroutine: they must not block.
	OnDisconnect func(nc *nats.Conn, err error)
	OnReconnect  func(nc *nats.Conn)
	OnError      func(nc *nats.Conn, sub *nats.Subscription, err error)

	// Extra options go after this package's: nats.InProcessServer for an embedded server,
	// a test's nats.CustomReconnectDelay.
	Extra []nats.Option
}

// NATSOptions are the client options of connection c: its name; reconnect forever, with
// ReconnectWait and jitter; pings; TLS and credentials from o; handlers that log through
// c.Logger, count into c.Metrics and then call c's own. o is assumed valid (Validate).
func (o Options) NATSOptions(c Client) ([]nats.Option, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("nats_conn", c.Name)
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWait),
		nats.ReconnectJitter(ReconnectJitter, ReconnectJitterTLS),
		nats.PingInterval(PingInterval),
		nats.MaxPingsOutstanding(MaxPingsOutstanding),
		// By default the client gives up reconnecting when a server refuses the same
		// credentials twice; "forever" has to last through a credentials rotation too.
		nats.IgnoreAuthErrorAbort(),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS: disconnected, reconnecting", "err", err)
			}
			if c.OnDisconnect != nil {
				c.OnDisconnect(nc, err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS: reconnected", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName())
			if c.OnReconnect != nil {
				c.OnReconnect(nc)
			}
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				// Counted, not logged: a busy subscription can hit this often, and its owner
				// knows better what it costs (pubsub fills the dropped events from the stream).
				if c.Metrics != nil {
					c.Metrics.slowConsumers.Add(1)
				}
			} else {
				subject := ""
				if sub != nil {
					subject = sub.Subject
				}
				log.Warn("NATS: error", "subject", subject, "err", err)
			}
			if c.OnError != nil {
				c.OnError(nc, sub, err)
			}
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			// A rolling restart: the server will close its clients over its lame duck window.
			log.Info("NATS: server entering lame duck mode; reconnecting elsewhere when it closes", "server", nc.ConnectedServerName())
		}),
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile)) // read again at each connect: rotation works
	}
	if o.CertFile != "" {
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	switch {
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NKeyFile != "":
		nk, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey: %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, nk)
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	return append(opts, c.Extra...), nil
}

// Connect validates o and connects c to o.URLs. A NATS that is not there yet (a process started
// before it) is retried with Backoff until ctx ends, each failure logged. What waiting will not
// mend fails at once: a URL that does not parse, a server certificate the CAs do not vouch for,
// credentials the server refuses. Once connected the connection reconnects by itself forever,
// until closed; c.Metrics then reports it.
func (o Options) Connect(ctx context.Context, c Client) (*nats.Conn, error) {
	if o.URLs == "" {
		return nil, errors.New("--nats: no NATS URL")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	opts, err := o.NATSOptions(c)
	if err != nil {
		return nil, err
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(o.URLs, opts...)
		if err == nil {
			if c.Metrics != nil {
				c.Metrics.watch(nc)
			}
			_, terr := nc.TLSConnectionState()
			log.Info("NATS: connected", "nats_conn", c.Name, "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName(),
				"tls", terr == nil)
			return nc, nil
		}
		if perr := o.permanent(err); perr != nil {
			return nil, perr
		}
		log.Warn("NATS: connecting", "nats_conn", c.Name, "url", o.Redacted(), "attempt", attempt+1, "err", err)
		if werr := sleep.For(ctx, Backoff(attempt)); werr != nil {
			return nil, fmt.Errorf("NATS at %s not reached: %w (last error: %v)", o.Redacted(), werr, err)
		}
	}
}

// permanent is the error to fail with at once when err, from a connect, is one that retrying
// will not mend; nil otherwise.
func (o Options) permanent(err error) error {
	var (
		uerr    *url.Error
		verr    *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &uerr):
		return fmt.Errorf("--nats: %q: %w", o.Redacted(), err)
	case errors.As(err, &verr), errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		return fmt.Errorf("NATS at %s: the server's certificate is not trusted (check --nats-ca and the URL's host): %w", o.Redacted(), err)
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		errors.Is(err, nats.ErrAccountAuthExpired):
		return fmt.Errorf("NATS at %s refused the credentials (%s): %w", o.Redacted(), o.authFlag(), err)
	}
	return nil
}

// Backoff is the pause before retry attempt+1 of something that failed attempt+1 times:
// 50ms doubling to 5s, the upper half jittered so that many processes retrying together
// spread out.
func Backoff(attempt int) time.Duration {
	d := min(50*time.Millisecond<<min(attempt, 7), 5*time.Second)
	return d/2 + rand.N(d/2+1)
}
