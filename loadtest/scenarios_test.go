package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScenariosWriteReports runs every scenario but storm, small, against one spawned `weft
// dev --size tiny`, and checks that each ran to completion with figures that add up and wrote
// its report, and that RESULTS.md is written from them.
func TestScenariosWriteReports(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := weftBin(t)
	tg, err := Spawn(ctx, bin, os.Stderr, "--size", "tiny", "--drain", "100ms")
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	out := t.TempDir()
	res := &Results{Command: "go test", Dir: map[*Report]string{}}
	write := func(r *Report, err error) *Report {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		res.Dir[r] = r.Scenario
		return r
	}

	boot, err := RunBoot(ctx, tg, BootConfig{Users: 5, Eager: 2})
	if err != nil {
		t.Fatal(err)
	}
	if boot.Lazy.Clients != 5 || boot.Eager.Clients != 2 || boot.Lazy.Ready.N != 4 || boot.TeamUsers == 0 {
		t.Fatalf("boot figures %+v", boot)
	}
	if boot.Lazy.BytesPerClient <= 0 || boot.Eager.BytesPerClient <= boot.Lazy.BytesPerClient {
		t.Fatalf("lazy boot read %.0f bytes, eager %.0f: the snapshot of the whole team should be more",
			boot.Lazy.BytesPerClient, boot.Eager.BytesPerClient)
	}
	res.Boot32k = write(BootReport(boot, "tiny", ""), nil)

	q, err := RunQuery(ctx, tg, QueryConfig{Sessions: 3, Rate: 100, OriginRate: 20, Duration: time.Second, OriginLatency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if q.Edge.Errors != 0 || q.Origin.Errors != 0 || q.Edge.All.N != 100 || q.Origin.All.N != 20 {
		t.Fatalf("query: edge %d answered %d errors (%s), origin %d answered %d errors (%s); want 100 and 20, no errors",
			q.Edge.All.N, q.Edge.Errors, q.Edge.FirstError, q.Origin.All.N, q.Origin.Errors, q.Origin.FirstError)
	}
	// Every origin request waited 20 ms; the edge answers from memory.
	if q.Origin.All.P50 < 20 {
		t.Fatalf("origin p50 %.1f ms with a 20 ms origin latency", q.Origin.All.P50)
	}
	res.Query = write(QueryReport(q, "tiny", ""))

	ty, err := RunTyping(ctx, tg, TypingConfig{Sessions: 2, Words: 2, Speeds: []time.Duration{10 * time.Millisecond, 0}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ty.Speeds {
		if s.Errors != 0 || s.Keystrokes.N < 4 || s.Found != 1 {
			t.Fatalf("typing at %v ms: %+v (%s)", s.IntervalMS, s, ty.FirstError)
		}
	}
	res.Typing = write(TypingReport(ty, "tiny", ""))

	fo, err := RunFanout(ctx, tg, FanoutConfig{Sessions: 5, Events: 10, Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	// The spawned stack has no background activity (--rate 0): the edge takes exactly the 10
	// events from NATS, once for the team, not once per session.
	if fo.Deliveries != 50 || fo.Duplicates != 0 || fo.EdgeEventsIn != 10 || fo.PerConnection != 50 {
		t.Fatalf("fanout: %+v", fo)
	}
	res.Fanout = write(FanoutReport(fo, "tiny", ""))

	cp, err := RunCapacity(ctx, tg, CapacityConfig{WorkerBin: workerBin(t), Steps: []int{4, 8}, Rates: []float64{5, 10}, StepFor: 500 * time.Millisecond,
		Probers: 2, QuerySessions: 2, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, s := range cp.Steps {
		phases = append(phases, s.Phase)
	}
	if got := strings.Join(phases, ","); got != "idle,idle,active,active,query" {
		t.Fatalf("capacity steps %s", got)
	}
	if a := cp.Steps[2]; a.Connections != 8 || a.DeliveriesPerS <= 0 || a.Deliver.N == 0 || cp.Steps[4].QueriesPerS <= 0 {
		t.Fatalf("capacity: active %+v, query %+v", a, cp.Steps[4])
	}
	res.Capacity = write(CapacityReport(cp, "tiny", ""))

	if err := res.Write(out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"RESULTS.md", "boot/boot.json", "query/query.json", "query/query-latency.png",
		"typing/typing.json", "typing/typing-latency.png", "fanout/fanout.json", "capacity/capacity.json", "capacity/capacity-latency.png", "capacity/capacity-memory.png"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("report file: %v", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "query", "query.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenario string
		Figures  QueryFigures
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Scenario != "query" || back.Figures.Edge.All.N != 100 {
		t.Fatalf("query.json: %v, %+v", err, back)
	}
	md, _ := os.ReadFile(filepath.Join(out, "RESULTS.md"))
	for _, want := range []string{"500,000 → 1,000", "channels.members p99", "memory per idle connection", "](query/query-latency.png)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md lacks %q", want)
		}
	}

	// A bounded run stops when its time is up, whatever it is doing: an hour of queries
	// under a one-second deadline ends with the deadline's error.
	qctx, qcancel := context.WithTimeout(ctx, time.Second)
	defer qcancel()
	done := make(chan error, 1)
	go func() {
		_, err := RunQuery(qctx, tg, QueryConfig{Sessions: 2, Rate: 20, Duration: time.Hour, OriginLatency: -1})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("an hour's query run under a 1s deadline returned %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the query run did not stop at its deadline")
	}
}
