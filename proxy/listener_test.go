package proxy_test

import (
	"errors"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/proxy"
)

// TestPaceAcceptsHoldsTheHerdInTheKernel: past the burst, the paced listener does not accept
// (the connections wait in the kernel's queue) until the rate allows, and Close ends a waiting
// Accept. A rate of one an hour makes "not yet" certain rather than a race with the clock.
func TestPaceAcceptsHoldsTheHerdInTheKernel(t *testing.T) {
	keys, err := token.New([]byte(testSecret))
	must(t, err)
	reg := prometheus.NewRegistry()
	p, err := proxy.New(proxy.Config{Tokens: keys, Static: []ring.Announcement{{Node: "e", Addr: "127.0.0.1:1"}},
		AcceptRate: 1.0 / 3600, AcceptBurst: 2, Registry: reg})
	must(t, err)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ln := p.PaceAccepts(raw)
	for range 3 { // the kernel completes all three handshakes: the listener's queue holds them
		c, err := net.Dial("tcp", raw.Addr().String())
		must(t, err)
		defer c.Close()
	}
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 3)
	go func() {
		for {
			c, err := ln.Accept()
			accepted <- result{c, err}
			if err != nil {
				return
			}
		}
	}()
	for range 2 { // the burst
		r := <-accepted
		must(t, r.err)
		r.c.Close()
	}
	// The third waits on the bucket: the wait is counted before the listener sleeps.
	testkit.Eventually(t, func() bool {
		select {
		case r := <-accepted:
			t.Fatalf("a third connection was accepted past the burst (err %v)", r.err)
		default:
		}
		return counter(t, reg, "weft_proxy_accept_waits_total") >= 1
	}, "the third connection's wait to be counted")
	select {
	case r := <-accepted:
		t.Fatalf("a third connection was accepted past the burst (err %v)", r.err)
	default:
	}
	must(t, ln.Close())
	if r := <-accepted; !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, %v; want net.ErrClosed", r.c, r.err)
	}
}

// TestPaceAcceptsOff: a negative rate gives the listener back as it is.
func TestPaceAcceptsOff(t *testing.T) {
	keys, err := token.New([]byte(testSecret))
	must(t, err)
	p, err := proxy.New(proxy.Config{Tokens: keys, Static: []ring.Announcement{{Node: "e", Addr: "127.0.0.1:1"}},
		AcceptRate: -1})
	must(t, err)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer raw.Close()
	if ln := p.PaceAccepts(raw); ln != raw {
		t.Fatalf("AcceptRate -1 wrapped the listener: %T", ln)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}
