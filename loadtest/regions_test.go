package loadtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// devRegionsOutput is the start of what `weft dev --regions 3 --wan-rtt 20ms,40ms` prints.
const devRegionsOutput = `weft dev: small world, 100 teams, 0 events/s, 3 regions on a simulated WAN, each with a proxy and 1 edge(s)
  region home proxy http://127.0.0.1:42713   (WebSocket ws://127.0.0.1:42713/ws, metrics http://127.0.0.1:42713/metrics; NATS hub nats://127.0.0.1:40795, falls back to a, b)
    edge-home-1 http://127.0.0.1:45399
  region a    proxy http://127.0.0.1:36017   (WebSocket ws://127.0.0.1:36017/ws, metrics http://127.0.0.1:36017/metrics; 20ms round trip to home, NATS leaf nats://127.0.0.1:41531, falls back to home, b)
    edge-a-1 http://127.0.0.1:45253
  region b    proxy http://127.0.0.1:37655   (WebSocket ws://127.0.0.1:37655/ws, metrics http://127.0.0.1:37655/metrics; 40ms round trip to home, NATS leaf nats://127.0.0.1:43843, falls back to home, a)
    edge-b-1 http://127.0.0.1:39807
  control http://127.0.0.1:33229   (dev only: POST /regions/{name}/kill kills a region's edges as a crash would, POST /regions/{name}/start starts new ones)
  origin  http://127.0.0.1:36911
  nats    nats://127.0.0.1:40795

tokens (24h):
  T00000000 U00000000 sakura.nakamura        eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMDAwMDAwMDAifQ.Z4Yq

try:
`

func TestParseDevOutputRegions(t *testing.T) {
	d, err := parseDevOutput(strings.NewReader(devRegionsOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := []DevRegion{{"home", "http://127.0.0.1:42713", 0}, {"a", "http://127.0.0.1:36017", 20 * time.Millisecond},
		{"b", "http://127.0.0.1:37655", 40 * time.Millisecond}}
	if len(d.Regions) != len(want) {
		t.Fatalf("regions %+v", d.Regions)
	}
	for i := range want {
		if d.Regions[i] != want[i] {
			t.Errorf("region %d: %+v, want %+v", i, d.Regions[i], want[i])
		}
	}
	if d.EdgeURL != want[0].ProxyURL || d.OriginURL != "http://127.0.0.1:36911" || d.ControlURL != "http://127.0.0.1:33229" {
		t.Fatalf("clients connect to %s (want the home proxy), origin %s, control %s", d.EdgeURL, d.OriginURL, d.ControlURL)
	}
}

// TestRegionsScenario runs the regions scenario, tiny, on a spawned `weft dev --regions 3`
// with small round trips, and checks that every region was measured in both phases with no
// error, no event lost or duplicated, that the far regions' clients carried their round trip
// only in the single-region phase, and that the report is written.
func TestRegionsScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tg, err := Spawn(ctx, weftBin(t), os.Stderr, "--size", "tiny", "--drain", "100ms", "--regions", "3", "--wan-rtt", "20ms,40ms")
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	const rate, dur, events = 40, time.Second, 5
	f, err := RunRegions(ctx, tg, RegionsConfig{Clients: 2, Rate: rate, Duration: dur, Events: events, EventRate: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cold) != 3 {
		t.Fatalf("cold loads %+v, want one per region", f.Cold)
	}
	for i, c := range f.Cold {
		if c.Region != []string{"home", "a", "b"}[i] || c.MS <= 0 || c.Users == 0 {
			t.Errorf("cold load %d: %+v", i, c)
		}
	}
	// A far region's cold load crosses its WAN link to the origin at least once.
	if f.Cold[2].MS < 40 {
		t.Errorf("region b (40 ms away) loaded the team in %.1f ms", f.Cold[2].MS)
	}
	if len(f.Arms) != 6 {
		t.Fatalf("%d arms, want 3 regions × 2 phases", len(f.Arms))
	}
	for i, a := range f.Arms {
		phase, region := []string{"regions", "single"}[i/3], []string{"home", "a", "b"}[i%3]
		if a.Phase != phase || a.Region != region {
			t.Fatalf("arm %d: %s/%s, want %s/%s", i, a.Phase, a.Region, phase, region)
		}
		if a.Queries.Errors != 0 || a.Queries.All.N != rate*int64(dur/time.Second) {
			t.Errorf("%s/%s: %d answered, %d errors (%s)", phase, region, a.Queries.All.N, a.Queries.Errors, a.Queries.FirstError)
		}
		for _, m := range regionMethods {
			if a.Queries.Methods[m].N == 0 {
				t.Errorf("%s/%s: no %s asked", phase, region, m)
			}
		}
		if a.Expected != 2*events || a.Delivered != a.Expected || a.Lost != 0 || a.Duplicates != 0 {
			t.Errorf("%s/%s: delivered %d of %d, lost %d, duplicated %d", phase, region, a.Delivered, a.Expected, a.Lost, a.Duplicates)
		}
		// Across the WAN every answer waits for the link's round trip; near its region, a
		// client's median does not.
		rtt := a.RTTMS
		if phase == "single" && a.Queries.All.P50 < rtt {
			t.Errorf("%s/%s: p50 %.1f ms across a %.0f ms link", phase, region, a.Queries.All.P50, rtt)
		}
		if phase == "regions" && rtt > 0 && a.Queries.All.P50 >= rtt {
			t.Errorf("%s/%s: p50 %.1f ms near its own region (%.0f ms from home)", phase, region, a.Queries.All.P50, rtt)
		}
	}
	// The killed phase: region b's clients were served elsewhere, came home, and lost nothing.
	k := f.Killed
	if k == nil || k.Region != "b" || k.Clients != 2 || k.ServedIn["b"] != 0 || k.ServedIn["home"]+k.ServedIn["a"] != 2 {
		t.Fatalf("killed phase: %+v", k)
	}
	if k.ResumedMS <= 0 || k.CaughtUpMS < k.ResumedMS || k.HomeMS <= 0 || k.Changes < 6 {
		t.Errorf("killed phase figures: %+v", k)
	}
	t.Logf("killed phase: %+v", *k)
	if k.Lost != 0 || k.Duplicates != 0 {
		t.Errorf("killed phase: %d changes lost, %d duplicated over %d clients × %d changes", k.Lost, k.Duplicates, k.Clients, k.Changes)
	}
	r, err := RegionsReport(f, "tiny", "go test")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := r.Write(out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "regions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Figures RegionsFigures `json:"figures"`
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Figures.Arms) != 6 {
		t.Fatalf("regions.json: %v, %d arms", err, len(back.Figures.Arms))
	}
	if _, err := os.Stat(filepath.Join(out, "regions-latency.png")); err != nil {
		t.Fatal(err)
	}
}
