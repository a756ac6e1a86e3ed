package cache_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/origin"
)

// BenchmarkFarOrigin is a cold load of a team from an origin one round trip away, in each
// form of the listings (docs/origin.md, "Fewer round trips"; the figures are there). Run it
// with, for example:
//
//	go test ./cache -run '^$' -bench 'FarOrigin/32k' -benchtime 1x
//	go test ./cache -run '^$' -bench 'FarOrigin/giant' -benchtime 1x -timeout 30m   # minutes
//
// The origin is the reference origin over loopback HTTP; wanTransport puts the round trips
// in. It reports the requests that reached the origin, the rounds (the longest chain of
// requests one after the other, the team's included: what the round trip multiplies), the
// connections opened (each one more round trip, before its first request), the megabytes
// read, and the load's wall time.

// wanTransport delays each request by one round trip (the request out, the answer's head
// back) and each new connection by one more (TCP's handshake). It models latency only, not
// bandwidth: a real WAN adds the time to move the bytes, the same in every form.
type wanTransport struct {
	rtt  time.Duration
	next *http.Transport

	bytes  atomic.Int64
	dials  atomic.Int64
	mu     sync.Mutex
	chains map[string]int // requests per listing part: path and partition
}

func newWANTransport(rtt time.Duration) *wanTransport {
	w := &wanTransport{rtt: rtt, chains: map[string]int{}}
	w.next = http.DefaultTransport.(*http.Transport).Clone()
	w.next.MaxIdleConnsPerHost = 64
	dialer := &net.Dialer{}
	w.next.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		w.dials.Add(1)
		if err := w.wait(ctx); err != nil {
			return nil, err
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return w
}

func (w *wanTransport) wait(ctx context.Context) error {
	t := time.NewTimer(w.rtt)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *wanTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.chains[r.URL.Path+"#"+r.URL.Query().Get("partition")]++
	w.mu.Unlock()
	if err := w.wait(r.Context()); err != nil {
		return nil, err
	}
	resp, err := w.next.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &w.bytes}
	}
	return resp, err
}

// reset starts a new load: no counts, no pooled connection (every connection is a new one).
func (w *wanTransport) reset() {
	w.next.CloseIdleConnections()
	w.bytes.Store(0)
	w.dials.Store(0)
	w.mu.Lock()
	clear(w.chains)
	w.mu.Unlock()
}

// rounds is the longest chain of requests of one part, plus the team's request before them.
func (w *wanTransport) rounds() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	longest := 0
	for _, n := range w.chains {
		longest = max(longest, n)
	}
	return longest + 1
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func BenchmarkFarOrigin(b *testing.B) {
	for _, size := range []string{"32k", "giant"} {
		b.Run(size, func(b *testing.B) {
			world := backend.World(b, 1, size)
			for _, rtt := range []time.Duration{0, 80 * time.Millisecond, 150 * time.Millisecond} {
				wan := newWANTransport(rtt)
				hc := &http.Client{Transport: wan}
				o := backend.NewOrigin(b, backend.OriginConfig{World: world,
					Client: origin.ClientConfig{HTTPClient: hc, Timeout: time.Minute}})
				b.Cleanup(wan.next.CloseIdleConnections)
				team := o.TeamIDs()[0]
				info, err := o.Client.Team(context.Background(), team)
				if err != nil || info.Listings == nil {
					b.Fatalf("the reference origin announces no listing forms: %v", err)
				}
				parts := info.Listings.Partitions
				for _, form := range []struct {
					name string
					wrap wrapFunc
				}{
					{"pages", firstContract},
					{"partitions", announce(&origin.Listings{Partitions: parts})},
					{"streams", announce(&origin.Listings{Stream: true})},
					{"partitioned-streams", nil}, // as the reference origin announces
				} {
					b.Run(fmt.Sprintf("rtt=%v/%s", rtt, form.name), func(b *testing.B) {
						o.SetWrap(form.wrap)
						defer o.SetWrap(nil)
						for b.Loop() {
							wan.reset()
							before := o.Requests()
							begin := time.Now()
							st, err := cache.Snapshot(context.Background(), o.Client, team, 50_000_000)
							if err != nil {
								b.Fatal(err)
							}
							took := time.Since(begin)
							users, chans := st.Counts()
							b.ReportMetric(float64(o.Requests()-before), "requests")
							b.ReportMetric(float64(wan.rounds()), "rounds")
							b.ReportMetric(float64(wan.bytes.Load())/1e6, "MB")
							b.ReportMetric(float64(wan.dials.Load()), "conns")
							b.ReportMetric(took.Seconds(), "load-s")
							b.ReportMetric(float64(users), "users")
							b.ReportMetric(float64(chans), "channels")
						}
					})
				}
			}
		})
	}
}
