package loadtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/internal/token"
)

// TestScenariosOnPostgres runs the scenarios against `weft dev --postgres`: the origin on
// PostgreSQL, seeded by dev with the tiny world, feeding the edge. Each scenario reads the world
// through the origin contract and writes through its admin API, so each must run as against
// the reference origin: boots, queries and autocomplete answered, every event delivered once
// per session, and with just-in-time annotations no delivery needs a follow-up query.
func TestScenariosOnPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dsn := pgtest.Start(t).CreateDB(t, "loadtest")
	tg, err := Spawn(ctx, weftBin(t), os.Stderr, "--size", "tiny", "--postgres", dsn, "--drain", "100ms", "--heartbeat", "10m")
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()

	boot, err := RunBoot(ctx, tg, BootConfig{Users: 5, Eager: 2})
	if err != nil {
		t.Fatal(err)
	}
	if boot.Lazy.Clients != 5 || boot.Eager.Clients != 2 || boot.TeamUsers != 20 || boot.Eager.BytesPerClient <= boot.Lazy.BytesPerClient {
		t.Fatalf("boot figures %+v", boot)
	}
	// No origin latency to set: this origin has no fault injection (OriginLatency -1).
	q, err := RunQuery(ctx, tg, QueryConfig{Sessions: 3, Rate: 100, OriginRate: 20, Duration: time.Second, OriginLatency: -1})
	if err != nil {
		t.Fatal(err)
	}
	if q.Edge.Errors != 0 || q.Origin.Errors != 0 || q.Edge.All.N != 100 || q.Origin.All.N != 20 {
		t.Fatalf("query: edge %d answered %d errors (%s), origin %d answered %d errors (%s); want 100 and 20, no errors",
			q.Edge.All.N, q.Edge.Errors, q.Edge.FirstError, q.Origin.All.N, q.Origin.Errors, q.Origin.FirstError)
	}
	ty, err := RunTyping(ctx, tg, TypingConfig{Sessions: 2, Words: 2, Speeds: []time.Duration{0}})
	if err != nil {
		t.Fatal(err)
	}
	if s := ty.Speeds[0]; s.Errors != 0 || s.Keystrokes.N < 4 || s.Found != 1 {
		t.Fatalf("typing: %+v (%s)", s, ty.FirstError)
	}
	// The events are user_changes written by the admin API into the tables: the outbox
	// publishes each once, and the edge takes each once for the team.
	fo, err := RunFanout(ctx, tg, FanoutConfig{Sessions: 5, Events: 10, Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	if fo.Deliveries != 50 || fo.Duplicates != 0 || fo.EdgeEventsIn != 10 || fo.PerConnection != 50 {
		t.Fatalf("fanout: %+v", fo)
	}

	st := tg.Stack()
	keys, err := token.New([]byte(token.DevSecret))
	if err != nil {
		t.Fatal(err)
	}
	cfg := AnnotationConfig{Sessions: 8, Messages: 80, Rate: 200, Channels: 4, Seed: 1,
		WSURL: st.WSURL(), OriginURL: st.OriginURL, HTTP: st.HTTP, Team: st.Tokens[0].Team}
	cfg.Token = func(u string) (string, error) { return keys.Issue(cfg.Team, u, time.Hour) }
	an, err := RunAnnotations(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if an.Deliveries == 0 || an.Unrenderable != 0 || an.FollowUps != 0 || an.Annotated == 0 {
		t.Fatalf("annotations: %d deliveries, %d unrenderable, %d follow-ups, %d objects attached",
			an.Deliveries, an.Unrenderable, an.FollowUps, an.Annotated)
	}
}
