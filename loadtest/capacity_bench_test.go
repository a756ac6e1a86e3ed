package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin/reference"
)

// Capacity figures of docs/architecture.md's performance budgets, with the server in a child process and
// the client load in this one, over loopback:
//
//	go test ./loadtest -run '^$' -bench . -benchtime 1x -timeout 15m
//
// Each figure has two sub-benchmarks: weft (`weft dev`, small world, one team) and raw (the
// bare coder/websocket baseline of baseline_test.go), measured by the same clients in the same
// run. Each runs its scenario once per call whatever b.N is (ns/op is hidden): use
// -benchtime 1x. KB is 1024 bytes, the unit of /proc.
//
// weft runs with --heartbeat 10m so that idle sessions, which never send anything, are not
// closed after 3 × the default 30s heartbeat during a slow run; it changes nothing else.

const (
	capacityConns    = 10_000
	dialParallel     = 64
	scenarioDeadline = 3 * time.Minute
	burstEvents      = 200 // the fan-out figure's events, published at once
	pacedEvents      = 20  // the latency round's events, one every pacedEvery
	pacedEvery       = 250 * time.Millisecond
)

// target is a server under measurement.
type target struct {
	wsURL  string
	pid    int
	tokens []string
	sample func(ctx context.Context) (memSample, error)
	// burst publishes n events at once and returns the last one's seq after all are published.
	burst func(ctx context.Context, n int) (int64, error)
	// stamped publishes one event whose user title is its send time in Unix ns.
	stamped func(ctx context.Context) (int64, error)
}

// memSample is a server's memory, goroutines and connections at one moment.
type memSample struct {
	rss, heap, stack, goroutines float64
	conns                        int
}

func sampleFrom(ctx context.Context, pid int, metrics func(context.Context, ...string) (map[string]float64, error), connMetric string) (memSample, error) {
	rss, err := procStatusBytes(pid, "VmRSS")
	if err != nil {
		return memSample{}, err
	}
	m, err := metrics(ctx, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines", connMetric)
	if err != nil {
		return memSample{}, err
	}
	return memSample{rss: float64(rss), heap: m["go_memstats_heap_inuse_bytes"],
		stack: m["go_memstats_stack_inuse_bytes"], goroutines: m["go_goroutines"], conns: int(m[connMetric])}, nil
}

// needFiles raises this process's open files limit and skips the benchmark when it cannot
// hold every connection.
func needFiles(b *testing.B) {
	b.Helper()
	limit, err := RaiseFileLimit()
	if err != nil {
		b.Fatalf("raising the open files limit: %v", err)
	}
	if limit < capacityConns+512 {
		b.Fatalf("open files limited to %d: %d connections need more", limit, capacityConns)
	}
}

// weftTarget builds weft, starts `weft dev` with the small world, and mints a token for every
// active user of its first team.
func weftTarget(b *testing.B, ctx context.Context) *target {
	b.Helper()
	needFiles(b)
	bin := weftBin(b)
	var stderr testkit.SyncBuffer // shown in a failure, its first 4000 bytes
	st, err := StartDev(ctx, DevConfig{Bin: bin, Args: []string{"--size", "small", "--heartbeat", "10m"},
		Stderr: &stderr})
	if err != nil {
		b.Fatalf("%v\n%.4000s", err, stderr.String())
	}
	b.Cleanup(func() {
		if err := st.Close(); err != nil {
			b.Errorf("%v\n%.4000s", err, stderr.String())
		}
	})
	// Go raises its soft limit to the hard one at start-up; the child must have done so.
	if lim, err := FileLimit(st.PID()); err != nil || lim < capacityConns+512 {
		b.Fatalf("the edge may open %d files (%v): not enough for %d connections", lim, err, capacityConns)
	}
	team := st.Tokens[0].Team
	users, err := TeamUsers(ctx, st.HTTP, st.OriginURL, "", team)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := token.New([]byte(token.DevSecret))
	if err != nil {
		b.Fatal(err)
	}
	t := &target{wsURL: st.WSURL(), pid: st.PID()}
	var subject string // whose user_change events the benchmarks publish: any, they go to everyone
	for _, u := range users {
		if !u.Deleted {
			tok, err := keys.Issue(team, u.ID, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			t.tokens = append(t.tokens, tok)
			subject = u.ID
		}
	}
	if subject == "" {
		b.Fatalf("team %s has no active user", team)
	}
	t.sample = func(ctx context.Context) (memSample, error) {
		return sampleFrom(ctx, st.PID(), st.Metrics, "weft_edge_connections")
	}
	t.burst = func(ctx context.Context, n int) (int64, error) {
		title := "burst"
		r, err := PostEvents(ctx, st.HTTP, st.OriginURL, "", team,
			reference.EventsRequest{Type: "user_change", User: subject, Title: &title, Count: n})
		return r.LastSeq, err
	}
	t.stamped = func(ctx context.Context) (int64, error) {
		title := strconv.FormatInt(time.Now().UnixNano(), 10)
		r, err := PostEvents(ctx, st.HTTP, st.OriginURL, "", team,
			reference.EventsRequest{Type: "user_change", User: subject, Title: &title})
		return r.LastSeq, err
	}
	return t
}

// rawBaseline starts the raw server in mode as a child process.
func rawBaseline(b *testing.B, ctx context.Context, mode string) *target {
	b.Helper()
	needFiles(b)
	rc, err := startRaw(ctx, mode)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Kill)
	hc := &http.Client{Transport: newTransport()}
	b.Cleanup(hc.CloseIdleConnections)
	return rawTarget(rc, hc)
}

func rawTarget(rc *rawChild, hc *http.Client) *target {
	metrics := func(ctx context.Context, names ...string) (map[string]float64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.url+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return parseMetrics(resp.Body, names)
	}
	publish := func(ctx context.Context, n int) (int64, error) {
		var r reference.EventsReply
		err := originJSON(ctx, hc, http.MethodPost, rc.url+"/publish?n="+strconv.Itoa(n), "", []byte{}, &r)
		return r.LastSeq, err
	}
	return &target{
		wsURL:  "ws" + rc.url[len("http"):] + "/ws",
		pid:    rc.PID(),
		tokens: []string{"raw-ignores-tokens"},
		sample: func(ctx context.Context) (memSample, error) {
			return sampleFrom(ctx, rc.PID(), metrics, "raw_connections")
		},
		burst:   publish,
		stamped: func(ctx context.Context) (int64, error) { return publish(ctx, 1) },
	}
}

func waitConnections(b *testing.B, ctx context.Context, t *target, n int) {
	b.Helper()
	last := -1
	err := pollUntil(ctx, scenarioDeadline, func() (bool, error) {
		m, err := t.sample(ctx)
		last = m.conns
		return last == n, err
	})
	if err != nil {
		b.Fatalf("waiting for %d connections on the server (it has %d): %v", n, last, err)
	}
}

// settle waits until the server's RSS has not grown for 3s (polling /proc; it forces nothing
// in the child), at most 60s, and then samples its memory.
func settle(b *testing.B, ctx context.Context, t *target) memSample {
	b.Helper()
	const quiet, most = 3 * time.Second, 60 * time.Second
	begin := time.Now()
	peak, since := int64(0), time.Now()
	for time.Since(since) < quiet {
		rss, err := procStatusBytes(t.pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		if rss > peak+max(peak/500, 256<<10) { // grew by over 0.2% (and 256 KB)
			peak, since = rss, time.Now()
		}
		if time.Since(begin) > most {
			b.Logf("RSS still growing after %v: sampling anyway", most)
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("settling: %v", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	s, err := t.sample(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// weftAndRaw runs measure against weft and then against the raw coder/websocket server in
// mode (see startRaw), each run bounded by scenarioDeadline.
func weftAndRaw(b *testing.B, mode string, measure func(b *testing.B, ctx context.Context, t *target)) {
	b.Run("weft", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), scenarioDeadline)
		defer cancel()
		measure(b, ctx, weftTarget(b, ctx))
	})
	b.Run("raw", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), scenarioDeadline)
		defer cancel()
		measure(b, ctx, rawBaseline(b, ctx, mode))
	})
}

// BenchmarkIdleConnections measures memory per idle WebSocket (budget ≤ 20 KB RSS, against a raw
// coder/websocket server measured in the same run: docs/architecture.md): 10,000 sessions of one team that read their hello and
// then stay silent. One warm-up session opens first (for weft it loads the team), so the
// figures divide only what the 10,000 connections added.
func BenchmarkIdleConnections(b *testing.B) { weftAndRaw(b, "idle", idle) }

func idle(b *testing.B, ctx context.Context, t *target) {
	hc := &http.Client{Transport: newTransport()}
	defer hc.CloseIdleConnections()
	warm, _, err := Dial(ctx, hc, t.wsURL, t.tokens[0])
	if err != nil {
		b.Fatal(err)
	}
	defer warm.CloseNow()
	warm.CloseRead(context.Background())
	waitConnections(b, ctx, t, 1)
	before := settle(b, ctx, t)

	b.ResetTimer()
	conns, _, err := DialMany(ctx, hc, t.wsURL, t.tokens, capacityConns, dialParallel)
	if err != nil {
		b.Fatal(err)
	}
	defer CloseAll(conns)
	dialed := b.Elapsed()
	// Idle clients still read, so that a close from the server would be seen.
	alive := make([]context.Context, len(conns))
	for i, c := range conns {
		alive[i] = c.CloseRead(context.Background())
	}
	waitConnections(b, ctx, t, capacityConns+1)
	after := settle(b, ctx, t)
	b.StopTimer()
	closed := 0
	for _, a := range alive {
		if a.Err() != nil {
			closed++
		}
	}
	if closed > 0 {
		b.Fatalf("%d of %d idle sessions were closed by the server", closed, capacityConns)
	}

	per := func(x, y float64) float64 { return (y - x) / capacityConns }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(per(before.rss, after.rss)/1024, "rss-KB/conn")
	b.ReportMetric(per(before.heap, after.heap)/1024, "heap-KB/conn")
	b.ReportMetric(per(before.stack, after.stack)/1024, "stack-KB/conn")
	b.ReportMetric(per(before.goroutines, after.goroutines), "goroutines/conn")
	b.ReportMetric(capacityConns/dialed.Seconds(), "dials/s")
	mb := func(x float64) string { return fmt.Sprintf("%.1f MB", x/(1<<20)) }
	b.Logf("before: RSS %s, heap in use %s, stacks %s, %v goroutines; after %d idle sessions: RSS %s, heap %s, stacks %s, %v goroutines",
		mb(before.rss), mb(before.heap), mb(before.stack), before.goroutines,
		capacityConns, mb(after.rss), mb(after.heap), mb(after.stack), after.goroutines)
}

// BenchmarkFanout10K measures events delivered per second to 10,000 sessions of one team
// (budget ≥ 250K/s, against a raw coder/websocket server with a writer goroutine per connection
// measured in the same run: docs/architecture.md). After a warm-up, the server publishes 200 team-wide events at once
// (weft: user_change through the origin's admin endpoint with count 200); deliveries/s is
// 200 × 10,000 over the time from the publish request until the last session has the last
// event. Then a paced round of 20 events, one every 250ms, each titled with its send time,
// gives publish-to-receive latencies at a load the server can sustain (one clock: same
// machine). CPU per delivery is the server's and this process's CPU time over the burst.
func BenchmarkFanout10K(b *testing.B) { weftAndRaw(b, "fanout", fanout) }

func fanout(b *testing.B, ctx context.Context, t *target) {
	hc := &http.Client{Transport: newTransport()}
	defer hc.CloseIdleConnections()
	conns, hellos, err := DialMany(ctx, hc, t.wsURL, t.tokens, capacityConns, dialParallel)
	if err != nil {
		b.Fatal(err)
	}
	fc := newFanoutClients(conns)
	defer fc.close()
	waitConnections(b, ctx, t, capacityConns)
	seq := hellos[0].Seq

	// Warm-up: buffers and stacks on both sides grow to their working size.
	seq, _ = fc.round(b, ctx, t, seq, 5, func(ctx context.Context) (int64, error) { return t.burst(ctx, 5) })
	b.ResetTimer()
	seq, burst := fc.round(b, ctx, t, seq, burstEvents, func(ctx context.Context) (int64, error) {
		return t.burst(ctx, burstEvents)
	})
	b.StopTimer()
	_, paced := fc.round(b, ctx, t, seq, pacedEvents, func(ctx context.Context) (int64, error) {
		var last int64
		tick := time.NewTicker(pacedEvery)
		defer tick.Stop()
		for k := range pacedEvents {
			if k > 0 {
				<-tick.C
			}
			s, err := t.stamped(ctx)
			if err != nil {
				return 0, err
			}
			last = s
		}
		return last, nil
	})

	d := float64(burst.deliveries)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(d/burst.took.Seconds(), "deliveries/s")
	b.ReportMetric(float64(burst.serverCPU.Nanoseconds())/d, "server-cpu-ns/delivery")
	b.ReportMetric(float64(burst.clientCPU.Nanoseconds())/d, "client-cpu-ns/delivery")
	b.ReportMetric(paced.p50.Seconds()*1e3, "p50-ms")
	b.ReportMetric(paced.p99.Seconds()*1e3, "p99-ms")
	b.Logf("burst: %d events × %d sessions in %v (publishing took %v); CPU: server %v (%.0f%% system), client %v, "+
		"rest of the machine %.2f cores (kernel threads; much more than ~0.5 means other load skewed the figure)",
		burstEvents, capacityConns, burst.took.Round(time.Millisecond), burst.published.Round(time.Millisecond),
		burst.serverCPU, 100*burst.serverSys.Seconds()/burst.serverCPU.Seconds(), burst.clientCPU.Round(time.Millisecond),
		burst.otherCPU.Seconds()/burst.wall.Seconds())
	b.Logf("paced: %d events, one every %v: publish-to-receive p50 %v, p99 %v, max %v",
		pacedEvents, pacedEvery, paced.p50.Round(time.Microsecond), paced.p99.Round(time.Microsecond), paced.max.Round(time.Microsecond))
}
