package loadtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/token"
)

// annotationModes are the edge's modes in the order they are reported: just in time, then the
// two baselines (nothing attached, the client asks; everything attached, every time).
var annotationModes = []string{"jit", "never", "always"}

// runAnnotationMode starts `weft dev` on a world of size with --annotate mode and runs the
// annotations scenario against it; the sessions fetch what they lack only in mode never.
func runAnnotationMode(tb testing.TB, ctx context.Context, bin, size, mode string, cfg AnnotationConfig) *AnnotationFigures {
	tb.Helper()
	var stderr testkit.SyncBuffer
	st, err := StartDev(ctx, DevConfig{Bin: bin, Stderr: &stderr,
		Args: []string{"--size", size, "--annotate", mode, "--heartbeat", "10m"}})
	if err != nil {
		tb.Fatalf("%v\n%s", err, stderr.String())
	}
	defer func() {
		if err := st.Close(); err != nil {
			tb.Errorf("%v\n%s", err, stderr.String())
		}
	}()
	keys, err := token.New([]byte(token.DevSecret))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.WSURL, cfg.OriginURL, cfg.HTTP, cfg.Team = st.WSURL(), st.OriginURL, st.HTTP, st.Tokens[0].Team
	cfg.Token = func(u string) (string, error) { return keys.Issue(cfg.Team, u, time.Hour) }
	cfg.FetchMissing = mode == "never"
	f, err := RunAnnotations(ctx, cfg)
	if err != nil {
		tb.Fatalf("annotate %s: %v\n%s", mode, err, stderr.String())
	}
	return f
}

func annotationTable(size string, cfg AnnotationConfig, figs map[string]*AnnotationFigures) string {
	var b strings.Builder
	f0 := figs[annotationModes[0]]
	fmt.Fprintf(&b, "annotations on the %s team: %d sessions, %d messages at %.0f/s (seed %d), %d deliveries\n",
		size, f0.Sessions, f0.Messages, cfg.Rate, cfg.Seed, f0.Deliveries)
	fmt.Fprintf(&b, "%-8s %12s %14s %16s %12s %s\n", "mode", "bytes/sess", "objs attached", "follow-ups/1000", "unrenderable", "publish→renderable p50 / p90 / p99 / max")
	for _, m := range annotationModes {
		f := figs[m]
		fmt.Fprintf(&b, "%-8s %12.0f %14d %16.1f %12d %v / %v / %v / %v\n", m, f.BytesPerSession, f.Annotated,
			f.FollowUpsPer1000(), f.Unrenderable, f.Render[0].Round(10*time.Microsecond), f.Render[1].Round(10*time.Microsecond),
			f.Render[2].Round(10*time.Microsecond), f.Render[3].Round(10*time.Microsecond))
	}
	return b.String()
}

// TestAnnotationModes runs the scenario small against the three modes and checks what each
// must do: just in time, every delivery renders with no follow-up and fewer objects than
// attaching everything; without annotations the client must ask; with all, nothing is asked.
func TestAnnotationModes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := weftBin(t)
	cfg := AnnotationConfig{Sessions: 40, Messages: 400, Rate: 400, Channels: 10, Seed: 1}
	figs := map[string]*AnnotationFigures{}
	for _, m := range annotationModes {
		figs[m] = runAnnotationMode(t, ctx, bin, "small", m, cfg)
	}
	t.Log("\n" + annotationTable("small", cfg, figs))
	jit, never, always := figs["jit"], figs["never"], figs["always"]
	for _, m := range annotationModes {
		if f := figs[m]; f.Deliveries != jit.Deliveries || f.Deliveries == 0 {
			t.Errorf("%s: %d deliveries, jit %d: the same stream must reach the same sessions", m, f.Deliveries, jit.Deliveries)
		}
		if figs[m].Unrenderable != 0 {
			t.Errorf("%s: %d deliveries not renderable", m, figs[m].Unrenderable)
		}
	}
	if jit.FollowUps != 0 || always.FollowUps != 0 {
		t.Errorf("follow-ups: jit %d, always %d; want none", jit.FollowUps, always.FollowUps)
	}
	if never.FollowUps == 0 || never.Annotated != 0 {
		t.Errorf("never: %d follow-ups, %d objects attached; want some and none", never.FollowUps, never.Annotated)
	}
	if jit.Annotated == 0 || jit.Annotated >= always.Annotated || jit.BytesPerSession >= always.BytesPerSession {
		t.Errorf("jit attached %d objects (%.0f B/session), always %d (%.0f B/session): want fewer, and some",
			jit.Annotated, jit.BytesPerSession, always.Annotated, always.BytesPerSession)
	}
}

// BenchmarkAnnotations is the issue's measurement: the 32k team, 1,000 sessions, the same
// message stream against each mode.
//
//	go test ./loadtest -run '^$' -bench Annotations -benchtime 1x -timeout 20m
func BenchmarkAnnotations(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	needFiles(b)
	bin := weftBin(b)
	cfg := AnnotationConfig{Sessions: 1000, Messages: 3000, Rate: 300, Seed: 1}
	for range b.N {
		figs := map[string]*AnnotationFigures{}
		for _, m := range annotationModes {
			figs[m] = runAnnotationMode(b, ctx, bin, "32k", m, cfg)
			b.ReportMetric(figs[m].BytesPerSession, m+"-bytes/session")
			b.ReportMetric(figs[m].FollowUpsPer1000(), m+"-followups/1000")
			b.ReportMetric(float64(figs[m].Render[2].Microseconds()), m+"-render-p99-µs")
		}
		fmt.Print(annotationTable("32k", cfg, figs))
	}
}
