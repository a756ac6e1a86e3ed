package client_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
)

// TestBackoffSpreadsReconnects: 1,000 clients lose their node at the same instant (a crash:
// every connection cut, no goodbye). Full jitter must spread their first reconnects over the
// backoff window instead of landing them on the new node at once.
//
// It asserts on the shape of the waits each client chose, not on how long anything took: the
// middle 80% of the first waits span at least 40% of the window (uniform waits span 80%, a herd
// ~0), and no tenth of the window holds more than a quarter of them (uniform: a tenth). And no
// client dials before its wait is over: its next hello comes after it. Arrivals at the server
// are logged too, but not asserted on: on a loaded machine (CI runs packages side by side on 2
// cores) the server accepts late and in clumps, whatever the clients did.
func TestBackoffSpreadsReconnects(t *testing.T) {
	const n = 1000
	const window = 2 * time.Second
	s := newStack(t, "small", nil)
	users := s.origin.Users(s.team)
	var active []string
	for _, u := range users {
		if !u.Deleted {
			active = append(active, u.ID)
		}
	}
	clients := make([]*client.Client, n)
	due := make([]time.Time, n)       // when each client's first reconnect may dial, by its wait
	back := make([]time.Time, n)      // when its next hello came
	waits := make([]time.Duration, n) // its first wait
	var dmu sync.Mutex
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(32)
	for i := range clients {
		g.Go(func() error {
			o := s.opts(active[i%len(active)])
			o.SkipBoot = true
			o.Backoff = client.Backoff{Min: window, Max: 4 * window}
			o.Rand = rand.New(rand.NewPCG(uint64(i), 7))
			o.OnReconnect = func(r client.Reconnect) {
				dmu.Lock()
				if due[i].IsZero() {
					due[i], waits[i] = time.Now().Add(r.Wait), r.Wait
				}
				dmu.Unlock()
			}
			o.OnConnect = func(client.Hello) {
				dmu.Lock()
				if !due[i].IsZero() && back[i].IsZero() {
					back[i] = time.Now()
				}
				dmu.Unlock()
			}
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := client.Dial(dctx, o)
			clients[i] = c
			return err
		})
	}
	err := g.Wait()
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			if c != nil {
				wg.Go(func() { c.Close() })
			}
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var hits []time.Duration
	var cut time.Time
	s.edge.OnHandshake(func() {
		mu.Lock()
		if !cut.IsZero() {
			hits = append(hits, time.Since(cut))
		}
		mu.Unlock()
	})
	mu.Lock()
	cut = time.Now()
	mu.Unlock()
	s.restart(true)

	// Wait until every client is back (each has had a second hello).
	reconnected := 0
	testkit.EventuallyOr(t, 60*time.Second, func() bool {
		reconnected = 0
		for _, c := range clients {
			if c.Stats().Connects >= 2 {
				reconnected++
			}
		}
		return reconnected == n
	}, "every client to reconnect", func() { t.Logf("%d of %d clients reconnected", reconnected, n) })
	mu.Lock()
	arr := slices.Clone(hits)
	mu.Unlock()
	if len(arr) < n {
		t.Fatalf("%d handshakes after the cut for %d clients", len(arr), n)
	}
	// Arrivals at the server, for the log: the first n handshakes are the first attempts.
	slices.Sort(arr)
	arrivals := arr[:n]
	dmu.Lock()
	first := slices.Clone(waits)
	for i := range n {
		if back[i].Before(due[i]) {
			t.Errorf("client %d dialed %v before its wait of %v was over", i, due[i].Sub(back[i]), waits[i])
		}
	}
	dmu.Unlock()
	slices.Sort(first)
	pct := func(p float64) time.Duration { return first[int(p*float64(n-1))] }
	bins := make([]int, 10)
	for _, d := range first {
		bins[min(int(d*10/window), 9)]++
	}
	arrBins := make([]int, 10)
	for _, d := range arrivals {
		arrBins[min(int(d*10/window), 9)]++
	}
	var hist strings.Builder
	for i, b := range bins {
		fmt.Fprintf(&hist, "%d-%dms:%d/%d ", i*int(window.Milliseconds())/10, (i+1)*int(window.Milliseconds())/10, b, arrBins[i])
	}
	t.Logf("first reconnect waits of %d clients after a crash, full jitter over %v: p10 %v, p50 %v, p90 %v, max %v; %d handshakes in all\nper tenth of the window (waits/arrivals at the server): %s",
		n, window, pct(0.1).Round(time.Millisecond), pct(0.5).Round(time.Millisecond),
		pct(0.9).Round(time.Millisecond), first[n-1].Round(time.Millisecond), len(arr), hist.String())
	if spread := pct(0.9) - pct(0.1); spread < window*4/10 {
		t.Errorf("middle 80%% of first reconnect waits span %v; want at least %v of a %v window", spread, window*4/10, window)
	}
	if peak := slices.Max(bins); peak > n/4 {
		t.Errorf("%d of %d first reconnect waits in one tenth of the window; want at most %d", peak, n, n/4)
	}
}
