package loadtest

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin/reference"
)

// devOutput is what `weft dev` printed in one run (tokens shortened).
const devOutput = `weft dev: small world, 100 teams, 0 events/s
  edge    http://127.0.0.1:45587   (WebSocket ws://127.0.0.1:45587/ws, metrics http://127.0.0.1:45587/metrics)
  origin  http://127.0.0.1:37703
  nats    nats://127.0.0.1:40849

tokens (24h):
  T00000000 U00000000 sakura.nakamura        eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMDAwMDAwMDAifQ.Z4Yq
  T00000000 U00000001 zoltan.nagy            eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMDAwMDAwMDEifQ.gC2V
  T00000001 U00100000 ziad.darwish           eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMDAxMDAwMDAifQ.DnTL

try:
  curl -s -H 'Authorization: Bearer eyJ…' -d '{}' http://127.0.0.1:45587/api/boot
`

func TestParseDevOutput(t *testing.T) {
	d, err := parseDevOutput(strings.NewReader(devOutput))
	if err != nil {
		t.Fatal(err)
	}
	if d.EdgeURL != "http://127.0.0.1:45587" || d.OriginURL != "http://127.0.0.1:37703" ||
		d.NATSURL != "nats://127.0.0.1:40849" || d.WSURL() != "ws://127.0.0.1:45587/ws" {
		t.Fatalf("parsed %+v (ws %s)", d, d.WSURL())
	}
	want := []DevToken{
		{"T00000000", "U00000000", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMDAwMDAwMDAifQ.Z4Yq"},
		{"T00000000", "U00000001", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMDAwMDAwMDEifQ.gC2V"},
		{"T00000001", "U00100000", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJVMDAxMDAwMDAifQ.DnTL"},
	}
	if len(d.Tokens) != len(want) {
		t.Fatalf("tokens %+v", d.Tokens)
	}
	for i := range want {
		if d.Tokens[i] != want[i] {
			t.Errorf("token %d: %+v, want %+v", i, d.Tokens[i], want[i])
		}
	}
	for _, bad := range []string{"", devOutput[:strings.Index(devOutput, "tokens")], "try:\n"} {
		if _, err := parseDevOutput(strings.NewReader(bad)); err == nil {
			t.Errorf("output %q parsed without error", bad)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 20012
go_memstats_heap_inuse_bytes 1.2345678e+08
weft_edge_requests_total{method="ping",outcome="ok"} 3
weft_edge_connections 10000
`
	m, err := parseMetrics(strings.NewReader(text), []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "weft_edge_connections"})
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 20012 || m["go_memstats_heap_inuse_bytes"] != 1.2345678e8 || m["weft_edge_connections"] != 10000 {
		t.Fatalf("parsed %v", m)
	}
	if _, err := parseMetrics(strings.NewReader(text), []string{"weft_edge_requests_total"}); err == nil {
		t.Fatal("a labelled series was read as unlabelled")
	}
}

func TestParseEventFrame(t *testing.T) {
	for _, c := range []struct {
		frame      string
		seq, title int64
		ok         bool
	}{
		{`{"type":"event","seq":18212,"event":{"type":"user_change","user":{"id":"U1","title":"1700000000123456789","updated":3}}}`, 18212, 1700000000123456789, true},
		{`{"type":"event","seq":7,"event":{"type":"message","channel":"C9","user":"U7","text":"hi"}}`, 7, 0, true},
		{`{"type":"event","seq":7,"event":{"type":"user_change","user":{"title":"Engineer"}}}`, 7, 0, true},
		{`{"type":"reply","id":7,"ok":true,"result":{}}`, 0, 0, false},
		{`{"type":"event","seq":x}`, 0, 0, false},
	} {
		seq, title, ok := parseEventFrame([]byte(c.frame))
		if seq != c.seq || title != c.title || ok != c.ok {
			t.Errorf("%s: %d %d %v, want %d %d %v", c.frame, seq, title, ok, c.seq, c.title, c.ok)
		}
	}
}

// TestDevStack runs the real thing small: build weft, start `weft dev` as a child, open a few
// sessions, drive events through the origin's admin endpoint and see every session get them.
func TestDevStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := weftBin(t)
	st, err := StartDev(ctx, DevConfig{Bin: bin, Args: []string{"--size", "tiny", "--drain", "100ms"}, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		select {
		case <-st.Exited():
		default:
			t.Error("Close returned before the child exited")
		}
	}()
	team := st.Tokens[0].Team
	users, err := TeamUsers(ctx, st.HTTP, st.OriginURL, "", team)
	if err != nil || len(users) == 0 {
		t.Fatalf("users of %s: %d, %v", team, len(users), err)
	}
	keys, err := token.New([]byte(token.DevSecret))
	if err != nil {
		t.Fatal(err)
	}
	users = slices.DeleteFunc(users, func(u TeamUser) bool { return u.Deleted })
	var tokens []string
	for _, u := range users[:min(3, len(users))] {
		tok, err := keys.Issue(team, u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	conns, hellos, err := DialMany(ctx, st.HTTP, st.WSURL(), tokens, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(conns)
	for i, h := range hellos {
		if h.Team != team || h.Protocol != Protocol || h.Seq != hellos[0].Seq {
			t.Fatalf("hello %d: %+v", i, h)
		}
	}

	title := "Load tester"
	reply, err := PostEvents(ctx, st.HTTP, st.OriginURL, "", team, reference.EventsRequest{Type: "user_change", User: users[0].ID, Title: &title, Count: 3})
	if err != nil || !reply.OK || reply.Published != 3 || reply.LastSeq != hellos[0].Seq+3 {
		t.Fatalf("posting events: %+v, %v", reply, err)
	}
	if seq, err := TeamSeq(ctx, st.HTTP, st.OriginURL, "", team); err != nil || seq != reply.LastSeq {
		t.Fatalf("team seq %d, %v; want %d", seq, err, reply.LastSeq)
	}
	for i, c := range conns {
		for want := reply.FirstSeq; want <= reply.LastSeq; want++ {
			_, frame, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
			if seq, _, ok := parseEventFrame(frame); !ok || seq != want || !strings.Contains(string(frame), `"title":"Load tester"`) {
				t.Fatalf("session %d: frame %.300s, want the event of seq %d", i, frame, want)
			}
		}
	}

	m, err := st.Metrics(ctx, "weft_edge_connections", "go_memstats_heap_inuse_bytes")
	if err != nil || m["weft_edge_connections"] != float64(len(conns)) || m["go_memstats_heap_inuse_bytes"] <= 0 {
		t.Fatalf("metrics %v, %v", m, err)
	}
	if runtime.GOOS == "linux" {
		if rss, err := st.RSS(); err != nil || rss < 1<<20 {
			t.Fatalf("RSS %d, %v", rss, err)
		}
		if user, sys, err := ProcessCPU(st.PID()); err != nil || user+sys <= 0 {
			t.Fatalf("CPU %v + %v, %v", user, sys, err)
		}
		if lim, err := FileLimit(st.PID()); err != nil || lim == 0 {
			t.Fatalf("file limit %d, %v", lim, err)
		}
	}
}
