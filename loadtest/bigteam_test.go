package loadtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBigTeamScenario runs the bigteam scenario small (a tiny world's team, 12 sessions in two
// workers, 3 probers) against both servers: every delivery arrives, each figure is measured,
// and the report sets the two side by side. (CPU is read at 10 ms resolution: too coarse for
// so few deliveries to check here.)
func TestBigTeamScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := BigTeamConfig{WeftBin: weftBin(t), WorkerBin: workerBin(t), Size: "tiny", Sessions: 12, PerWorker: 6,
		Probers: 3, ProbeEvery: 20 * time.Millisecond, Paced: 3, PacedEvery: 50 * time.Millisecond, Burst: 10, Runs: 1,
		Stderr: os.Stderr}
	f, err := RunBigTeam(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Runs) != 1 || len(f.Runs[0]) != 2 {
		t.Fatalf("runs %+v: want one run of two servers", f.Runs)
	}
	for _, s := range f.Runs[0] {
		if s.PacedDeliveries != 3*15 || s.BurstDeliveries != 10*15 {
			t.Errorf("%s: %d paced and %d burst deliveries, want 45 and 150", s.Server, s.PacedDeliveries, s.BurstDeliveries)
		}
		if s.Probe.N == 0 || s.Paced.P99 <= 0 || s.RSS <= 0 || s.RSSBase <= 0 || s.Failed != 0 {
			t.Errorf("%s: figures %+v", s.Server, s)
		}
	}
	if f.Runs[0][0].Server != "weft" || f.Runs[0][1].Server != "centrifuge" {
		t.Errorf("servers %s, %s: want weft then centrifuge", f.Runs[0][0].Server, f.Runs[0][1].Server)
	}
	r := BigTeamReport(f, "tiny", "go test")
	if len(r.Table) != len(bigTeamRows)+1 || !strings.Contains(strings.Join(r.Table[0], " "), "weft ÷ centrifuge") {
		t.Errorf("table %v", r.Table)
	}
}
