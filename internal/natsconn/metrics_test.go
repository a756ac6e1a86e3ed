package natsconn

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/testkit"
)

// gather reads m through a registry, as /metrics does: each series by name, with its
// direction label appended when it has one.
func gather(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	testkit.OK(t, reg.Register(m))
	families, err := reg.Gather()
	testkit.OK(t, err)
	out := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			name := f.GetName()
			for _, l := range s.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			switch {
			case s.Gauge != nil:
				out[name] = s.GetGauge().GetValue()
			case s.Counter != nil:
				out[name] = s.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestMetricsFollowTheConnection: connected goes 1 → 0 when the server goes away, publishes
// made meanwhile wait in the reconnect buffer (pending bytes), and when a server is back on the
// same address the connection is again 1, its reconnect counted, the caller's handlers called
// and the pending bytes sent.
func TestMetricsFollowTheConnection(t *testing.T) {
	m := NewMetrics()
	before := gather(t, m)
	testkit.Equal(t, before["weft_nats_connected"], 0, "connected before Connect")
	testkit.Equal(t, len(before), 8, "series before Connect")

	srv, url := startServer(t, &server.Options{})
	port := srv.Addr().(*net.TCPAddr).Port
	var disconnects, reconnects atomic.Int32
	nc := connect(t, Options{URLs: url}, Client{Name: "test", Metrics: m,
		OnDisconnect: func(*nats.Conn, error) { disconnects.Add(1) },
		OnReconnect:  func(*nats.Conn) { reconnects.Add(1) }})
	testkit.OK(t, nc.Publish("x", []byte("hello")))
	testkit.OK(t, nc.Flush())
	got := gather(t, m)
	testkit.Equal(t, got["weft_nats_connected"], 1, "connected")
	testkit.Equal(t, got["weft_nats_reconnects_total"], 0, "reconnects")
	testkit.Equal(t, got["weft_nats_msgs_total{out}"], 1, "messages out")
	testkit.Equal(t, got["weft_nats_bytes_total{out}"], 5, "bytes out")

	srv.Shutdown()
	srv.WaitForShutdown()
	testkit.Eventually(t, func() bool { return gather(t, m)["weft_nats_connected"] == 0 }, "connected to go to 0")
	testkit.Eventually(t, func() bool { return disconnects.Load() == 1 }, "the caller's disconnect handler")
	testkit.OK(t, nc.Publish("x", []byte("while away")))
	testkit.True(t, gather(t, m)["weft_nats_pending_bytes"] > 0, "nothing pending after a publish while disconnected")

	again, _ := startServer(t, &server.Options{Port: port})
	testkit.Eventually(t, func() bool { return gather(t, m)["weft_nats_connected"] == 1 }, "connected to come back to 1")
	got = gather(t, m)
	testkit.Equal(t, got["weft_nats_reconnects_total"], 1, "reconnects after the restart")
	testkit.Eventually(t, func() bool { return reconnects.Load() == 1 }, "the caller's reconnect handler")
	testkit.OK(t, nc.Flush())
	testkit.Equal(t, gather(t, m)["weft_nats_pending_bytes"], 0, "pending after the reconnect")
	vz, err := again.Varz(nil)
	testkit.OK(t, err)
	testkit.Equal(t, vz.InMsgs, 1, "messages the restarted server received: the one buffered")

	nc.Close()
	testkit.Equal(t, gather(t, m)["weft_nats_connected"], 0, "connected after Close")
}

// TestMetricsCountSlowConsumers: a subscription whose handler falls behind its pending limit
// is a slow consumer event, counted (and passed on to the caller's error handler).
func TestMetricsCountSlowConsumers(t *testing.T) {
	_, url := startServer(t, &server.Options{})
	m := NewMetrics()
	var callerSaw atomic.Int32
	nc := connect(t, Options{URLs: url}, Client{Name: "test", Metrics: m,
		OnError: func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if err == nats.ErrSlowConsumer {
				callerSaw.Add(1)
			}
		}})
	release := make(chan struct{})
	sub, err := nc.Subscribe("slow", func(*nats.Msg) { <-release })
	testkit.OK(t, err)
	testkit.OK(t, sub.SetPendingLimits(1, -1))
	defer func() {
		close(release)
		testkit.OK(t, sub.Unsubscribe())
	}()
	for range 10 {
		testkit.OK(t, nc.Publish("slow", []byte("m")))
	}
	testkit.OK(t, nc.Flush())
	testkit.Eventually(t, func() bool { return gather(t, m)["weft_nats_slow_consumers_total"] >= 1 }, "a slow consumer counted")
	testkit.Eventually(t, func() bool { return callerSaw.Load() >= 1 }, "the caller's error handler to see the slow consumer")
}
