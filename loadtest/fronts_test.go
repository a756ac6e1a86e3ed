package loadtest

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestFrontsScenario runs the fronts scenario small (a tiny world, 20 setups and round trips
// each way, 20 idle connections, a storm of 30 clients) through weft's proxy, nginx and the
// plain Go relay: every path is measured, the storm's disturbed clients all come back with
// nothing lost (the relay has no storm: its one edge is the one killed), and the report sets
// the fronts side by side. It needs nginx, which .ci/run installs
// (Debian's nginx-light).
func TestFrontsScenario(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the fronts scenario reads /proc")
	}
	if _, err := NginxBinary(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	figs, err := RunFronts(ctx, FrontsConfig{Bin: weftBin(t), WorkerBin: workerBin(t), Size: "tiny",
		Setups: 20, Requests: 20, Idle: 20, StormClients: 30, StormObserve: 60 * time.Second, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 3 || figs[0].Front != FrontWeft || figs[1].Front != FrontNginx || figs[2].Front != FrontRelay {
		t.Fatalf("fronts %+v: want weft, nginx and the relay", figs)
	}
	for _, f := range figs {
		if f.SetupDirect.N != 20 || f.SetupVia.N != 20 || f.RTTDirect.N != 20 || f.RTTVia.N != 20 {
			t.Errorf("%s: %d+%d setups and %d+%d round trips, want 20 of each", f.Front, f.SetupDirect.N, f.SetupVia.N, f.RTTDirect.N, f.RTTVia.N)
		}
		s := f.Storm
		if f.Front == FrontRelay {
			if s != nil {
				t.Errorf("the relay had a storm")
			}
			continue
		}
		if s == nil {
			t.Errorf("%s: no storm", f.Front)
			continue
		}
		if s.Front != f.Front || s.Disturbed == 0 || s.Back != s.Disturbed || s.NotBack != 0 || s.Lost != 0 || s.Duplicates != 0 {
			t.Errorf("%s: storm behind %q: %d disturbed, %d back, %d not back, %d lost, %d duplicated", f.Front, s.Front,
				s.Disturbed, s.Back, s.NotBack, s.Lost, s.Duplicates)
		}
	}
	r := FrontsReport([][]*FrontFigures{figs}, "tiny", "go test")
	if len(r.Table) != len(frontRows)+1 || !strings.Contains(strings.Join(r.Table[0], " "), "weft ≤ nginx") {
		t.Errorf("table %v", r.Table)
	}
}
