package proxy_test

// What an idle proxied WebSocket costs the proxy, checked against a bound. Each test's comment
// describes the bug it was written for; the test fails if that bug comes back.

import (
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/proxy"
)

func memNow() (heap, stack uint64, g int) {
	for range 3 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()
}

// TestIdleProxiedConnMemory: the cost in this process of an idle WebSocket through the proxy
// beyond the same connection straight to the edge: the proxy's handler goroutine stays parked
// in pipe for the connection's life (with the http.conn, its bufio.Reader, the request and its
// clone), plus a second goroutine and two CopyBuffers. Measured at 3.7 KiB and 2 goroutines
// (README); the test fails past 16 KiB or 3 goroutines, which an idle connection that held a
// copy buffer (32 KiB) or a goroutine more would pass.
func TestIdleProxiedConnMemory(t *testing.T) {
	w := newWorld(t, "small", func(c *edge.Config) { c.RequestRate, c.ConnectRate, c.TeamConnectRate = -1, -1, -1 })
	w.proxyFn = func(c *proxy.Config) { c.ConnectRate, c.EdgeRate = -1, -1 }
	e := w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	team := w.origin.TeamIDs()[0]
	user := w.origin.Users(team)[0].ID
	edgeURL, proxyURL := "http://"+e.addr, p.url
	tok := w.token(team, user)
	const n = 400
	measure := func(url string) (float64, float64, float64) {
		h0, s0, g0 := memNow()
		cs := make([]*websocket.Conn, n)
		for i := range cs {
			c, err := tryDial(url, tok)
			must(t, err)
			cs[i] = c
		}
		settle()
		h1, s1, g1 := memNow()
		for _, c := range cs {
			c.CloseNow()
		}
		settle()
		return float64(int64(h1)-int64(h0)) / n, float64(int64(s1)-int64(s0)) / n, float64(g1-g0) / n
	}
	dh, ds, dg := measure(edgeURL)
	ph, ps, pg := measure(proxyURL)
	t.Logf("per connection, direct:  heap %.0f B, stacks %.0f B, goroutines %.1f", dh, ds, dg)
	t.Logf("per connection, proxied: heap %.0f B, stacks %.0f B, goroutines %.1f", ph, ps, pg)
	kib, g := (ph-dh+ps-ds)/1024, pg-dg
	t.Logf("proxy's share: heap %.0f B + stacks %.0f B = %.1f KiB, %.1f goroutines", ph-dh, ps-ds, kib, g)
	if kib > 16 || g > 3 {
		t.Errorf("an idle proxied connection costs the proxy %.1f KiB and %.1f goroutines, want at most 16 KiB and 3", kib, g)
	}
}

// settle waits until the goroutine count has held still for 5 ticks of 20ms (goroutines of
// connections just opened or closed start or end a moment later), at most 5s.
func settle() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, still := runtime.NumGoroutine(), 0
	for end := time.Now().Add(5 * time.Second); still < 5 && time.Now().Before(end); {
		<-tick.C
		if n := runtime.NumGoroutine(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
}
