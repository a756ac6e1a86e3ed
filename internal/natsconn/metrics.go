package natsconn

import (
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is a prometheus.Collector of one NATS connection, read from the client library when
// scraped: whether it is connected, its reconnects, the bytes waiting to go out (during an
// outage, the reconnect buffer), slow consumer events, and messages and bytes in and out.
// Give it to Client.Metrics before Connect; until Connect has connected it reports a
// connection that is not connected and has done nothing.
type Metrics struct {
	conn          atomic.Pointer[nats.Conn]
	slowConsumers atomic.Uint64
}

// NewMetrics returns the metrics of a connection not made yet.
func NewMetrics() *Metrics { return &Metrics{} }

func (m *Metrics) watch(nc *nats.Conn) { m.conn.Store(nc) }

var (
	connectedDesc = prometheus.NewDesc("weft_nats_connected",
		"1 while the NATS connection is up, 0 while it is reconnecting (or not made yet).", nil, nil)
	reconnectsDesc = prometheus.NewDesc("weft_nats_reconnects_total",
		"Times the NATS connection came back after losing its server.", nil, nil)
	pendingDesc = prometheus.NewDesc("weft_nats_pending_bytes",
		"Bytes written to the NATS connection and not sent yet; while reconnecting, what the reconnect buffer holds (publishes past its 8 MiB fail).", nil, nil)
	slowDesc = prometheus.NewDesc("weft_nats_slow_consumers_total",
		"Times the NATS client started dropping a subscription's messages because its handler fell behind (pubsub refills them from the stream).", nil, nil)
	msgsDesc = prometheus.NewDesc("weft_nats_msgs_total",
		"Messages received (in) and sent (out) on the NATS connection.", []string{"direction"}, nil)
	bytesDesc = prometheus.NewDesc("weft_nats_bytes_total",
		"Payload bytes received (in) and sent (out) on the NATS connection.", []string{"direction"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connectedDesc, reconnectsDesc, pendingDesc, slowDesc, msgsDesc, bytesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	var (
		st        nats.Statistics
		connected float64
		pending   int
	)
	if nc := m.conn.Load(); nc != nil {
		st = nc.Stats()
		if nc.IsConnected() {
			connected = 1
		}
		if n, err := nc.Buffered(); err == nil { // an error: closed, nothing pending
			pending = n
		}
	}
	ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(reconnectsDesc, prometheus.CounterValue, float64(st.Reconnects))
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(slowDesc, prometheus.CounterValue, float64(m.slowConsumers.Load()))
	ch <- prometheus.MustNewConstMetric(msgsDesc, prometheus.CounterValue, float64(st.InMsgs), "in")
	ch <- prometheus.MustNewConstMetric(msgsDesc, prometheus.CounterValue, float64(st.OutMsgs), "out")
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(st.InBytes), "in")
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(st.OutBytes), "out")
}
