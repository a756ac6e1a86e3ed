package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/internal/token"
)

// BenchmarkCommitToDelivery measures, side by side, the time from a change being written to a
// client receiving it through an edge, at a steady 1,000 changes a second for 5 s:
//
//	go test ./cmd/weft -run '^$' -bench CommitToDelivery -benchtime 1x
//
// Two clocks start each change: write-* when the write is issued, return-* when it returned.
// postgres: an INSERT into weft_messages, returned once committed; the trigger's outbox row
// then goes through the publisher, JetStream and the edge, so return-* is commit-to-delivery.
// reference: the admin API's POST, which the reference origin answers only once the change is
// applied and published: the event may reach the client first, and return-* is then negative.
func BenchmarkCommitToDelivery(b *testing.B) {
	for _, name := range []string{"postgres", "reference"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				benchDelivery(b, name)
			}
		})
	}
}

func benchDelivery(b *testing.B, which string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var args []string
	var pool *pgxpool.Pool
	if which == "postgres" {
		dsn := pgtest.Start(b).CreateDB(b, fmt.Sprintf("deliver%d", time.Now().UnixNano()))
		for _, a := range [][]string{{"origin", "migrate", "--postgres", dsn}, {"origin", "seed", "--postgres", dsn, "--size", "tiny", "--log-level", "error"}} {
			if err := run(ctx, a, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		var err error
		if pool, err = pgxpool.New(ctx, dsn); err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		args = append(args, "--postgres", dsn, "--outbox-poll", "1s")
	} else {
		args = append(args, "--size", "tiny", "--rate", "0")
	}
	originURL, natsURL, stopOrigin := startOrigin(b, args...)
	defer stopOrigin()
	edgeURL, _, stopEdge := startEdgeURLs(b, "--origin", originURL, "--nats", natsURL)
	defer stopEdge()

	// The tiny world's first team: its first user watches, its second posts in general.
	const team, watcher, poster, channel = "T00000000", "U00000000", "U00000001", "C00000000"
	keys, _ := token.New([]byte(testSecret))
	tok, _ := keys.Issue(team, watcher, time.Hour)
	c, err := client.Dial(ctx, client.Options{URL: edgeURL, Token: tok})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	// Both ends are kept by text and matched at the end: an event may reach the client before
	// its writer has noted the commit.
	var mu sync.Mutex
	sent, written, arrived := map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	var readers sync.WaitGroup
	readers.Go(func() {
		for ev := range c.Events() {
			now := time.Now()
			if ev.Type == client.EventMessage {
				mu.Lock()
				arrived[ev.Text] = now
				mu.Unlock()
			}
		}
	})
	defer readers.Wait()
	defer c.Close()

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer hc.CloseIdleConnections()
	write := func(text string) error {
		if pool != nil {
			_, err := pool.Exec(ctx, `INSERT INTO weft_messages (team, channel, user_id, text) VALUES ($1, $2, $3, $4)`, team, channel, poster, text)
			return err
		}
		resp, err := hc.Post(originURL+"/origin/admin/teams/"+team+"/events", "application/json",
			strings.NewReader(fmt.Sprintf(`{"type":"message","channel":%q,"user":%q,"text":%q}`, channel, poster, text)))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("admin events: %s", resp.Status)
		}
		return nil
	}
	// 1,000 a second: four writers, each on its own 4 ms tick, for 5 s.
	const writers, every, total = 4, 4 * time.Millisecond, 5000
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := range total / writers {
				<-tick.C
				text := fmt.Sprintf("w%d-%d", w, i)
				start := time.Now()
				if err := write(text); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				sent[text], written[text] = start, time.Now()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	testkit.EventuallyWithin(b, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived) >= total
	}, "every change at the client")
	b.StopTimer()
	mu.Lock()
	var fromWrite, fromReturn []time.Duration
	for text, t0 := range sent {
		fromWrite = append(fromWrite, arrived[text].Sub(t0))
		fromReturn = append(fromReturn, arrived[text].Sub(written[text]))
	}
	mu.Unlock()
	q := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(fromWrite, 0.5), "write-p50-ms")
	b.ReportMetric(q(fromWrite, 0.99), "write-p99-ms")
	b.ReportMetric(q(fromReturn, 0.5), "return-p50-ms")
	b.ReportMetric(q(fromReturn, 0.99), "return-p99-ms")
}
