package pubsub

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/natsconn"
	"github.com/weft-edge/weft/internal/testkit"
)

// startAuthServer is a NATS server with JetStream on loopback that takes one user and password.
func startAuthServer(t *testing.T, user, password string) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(), Username: user, Password: password})
	testkit.OK(t, err)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return "nats://" + srv.Addr().(*net.TCPAddr).String()
}

// TestConnectWithNATSOptions: Config.NATS carries credentials to the connection; refused
// credentials fail at once naming their flag; options that do not validate fail before any
// connection; the connection's metrics come with the Bus.
func TestConnectWithNATSOptions(t *testing.T) {
	url := startAuthServer(t, "weft", "s3cret")
	b := connect(t, Config{NATS: natsconn.Options{URLs: url, User: "weft", Password: "s3cret"}})
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(0)
	publish(t, b, "T1", 1, 2)
	testkit.Eventually(t, func() bool { return r.count() >= 2 }, "2 events")

	reg := prometheus.NewRegistry()
	testkit.OK(t, reg.Register(b.ConnMetrics()))
	families, err := reg.Gather()
	testkit.OK(t, err)
	connected := -1.0
	for _, f := range families {
		if f.GetName() == "weft_nats_connected" {
			connected = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	testkit.Equal(t, connected, 1, "weft_nats_connected of the bus's connection")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = Connect(ctx, Config{NATS: natsconn.Options{URLs: url, User: "weft", Password: "wrong"}})
	testkit.True(t, err != nil && !errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "--nats-user"),
		"wrong password: %v; want an immediate error naming --nats-user", err)

	// Nothing listens at 127.0.0.1:1: an error naming the flag, not a retry, shows that the
	// options were checked first.
	_, err = Connect(ctx, Config{NATS: natsconn.Options{URLs: "nats://127.0.0.1:1", CAFile: t.TempDir() + "/nosuch.pem"}})
	testkit.True(t, err != nil && strings.HasPrefix(err.Error(), "--nats-ca:"), "missing CA file: %v", err)
	_, err = Connect(ctx, Config{URL: url, NATS: natsconn.Options{URLs: "nats://127.0.0.1:1"}})
	testkit.True(t, err != nil && strings.Contains(err.Error(), "differ"), "URL and NATS.URLs differing: %v", err)
}
