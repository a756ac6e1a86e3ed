package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/proxy"
)

// benchWorld is one edge and one proxy in front of it, on the small world, with the first
// team loaded: the proxy's added cost is all that differs between its two URLs.
func benchWorld(b *testing.B) (w *world, edgeURL, proxyURL, team, user string) {
	// The path, not the quotas.
	w = newWorld(b, "small", func(c *edge.Config) { c.RequestRate, c.ConnectRate, c.TeamConnectRate = -1, -1, -1 })
	w.proxyFn = func(c *proxy.Config) { c.ConnectRate, c.EdgeRate = -1, -1 }
	e := w.addEdge("edge-1")
	p := w.addProxy()
	w.waitRing("edge-1")
	team = w.origin.TeamIDs()[0]
	user = w.origin.Users(team)[0].ID
	return w, "http://" + e.addr, p.url, team, user
}

func dialWS(b *testing.B, base, tok string) *websocket.Conn {
	c, err := tryDial(base, tok)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// tryDial connects and reads the hello.
func tryDial(base, tok string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(base, "http")+"/ws",
		&websocket.DialOptions{Subprotocols: []string{"weft.v1"}, HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		return nil, err
	}
	if _, _, err := c.Read(context.Background()); err != nil { // hello
		c.CloseNow()
		return nil, err
	}
	return c, nil
}

// BenchmarkUsersInfoRoundTrip: users.info of 2 users, one connection, one request at a time,
// straight to the edge and through the proxy; p50/p99 of each, in one run.
func BenchmarkUsersInfoRoundTrip(b *testing.B) {
	w, edgeURL, proxyURL, team, user := benchWorld(b)
	tok := w.token(team, user)
	us := w.origin.Users(team)
	frame := fmt.Appendf(nil, `{"id":1,"method":"users.info","params":{"users":["%s","%s"]}}`, us[1].ID, us[2].ID)
	for _, tc := range []struct{ name, url string }{{"direct", edgeURL}, {"proxied", proxyURL}} {
		b.Run(tc.name, func(b *testing.B) {
			c := dialWS(b, tc.url, tok)
			defer c.CloseNow()
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				begin := time.Now()
				if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(begin))
			}
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
			b.ReportMetric(q(0.5), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
		})
	}
}

// benchTokens is 64 tokens of team's users, round the team.
func benchTokens(w *world, team string) []string {
	users := w.origin.Users(team)
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = w.token(team, users[i%len(users)].ID)
	}
	return toks
}

// BenchmarkConnect: WebSocket connections set up per second (handshake, token check, route,
// the edge's hello read by the client, close), 16 at a time, straight to the edge and through
// the proxy.
func BenchmarkConnect(b *testing.B) {
	w, edgeURL, proxyURL, team, _ := benchWorld(b)
	toks := benchTokens(w, team)
	for _, tc := range []struct{ name, url string }{{"direct", edgeURL}, {"proxied", proxyURL}} {
		b.Run(tc.name, func(b *testing.B) {
			var next atomic.Int64
			var wg sync.WaitGroup
			n := int64(b.N)
			begin := time.Now()
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= n; i = next.Add(1) {
						c, err := tryDial(tc.url, toks[i%int64(len(toks))])
						if err != nil {
							b.Error(err) // Fatal may only be called from the benchmark's goroutine
							return
						}
						c.Close(websocket.StatusNormalClosure, "")
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(n)/time.Since(begin).Seconds(), "conns/s")
		})
	}
}

// BenchmarkConnectSerial: one WebSocket connection set up at a time (handshake, token check,
// route, the edge's hello read by the client, close), straight to the edge and through the
// proxy: ns/op is the setup latency, and proxied − direct is what the proxy adds to it.
func BenchmarkConnectSerial(b *testing.B) {
	w, edgeURL, proxyURL, team, _ := benchWorld(b)
	toks := benchTokens(w, team)
	for _, tc := range []struct{ name, url string }{{"direct", edgeURL}, {"proxied", proxyURL}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := range b.N {
				c, err := tryDial(tc.url, toks[i%len(toks)])
				if err != nil {
					b.Fatal(err)
				}
				c.Close(websocket.StatusNormalClosure, "")
			}
		})
	}
}
