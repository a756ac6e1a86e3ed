package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/protocol"
	"github.com/weft-edge/weft/pubsub"
)

// Benchmarks of the edge's request path and boot payload, everything real over loopback:
//
//	go test ./edge -run '^$' -bench . -benchtime 3s
//
// BenchmarkRawEcho is the baseline of docs/architecture.md's performance budgets (users.info p99 ≤ 2× raw echo): a bare
// coder/websocket echo server, driven by the same client loop in the same run.

type benchStack struct {
	origin *reference.Server
	edge   *httptest.Server
	keys   *token.Keys
	team   string
	users  []origin.User
	snap   string // origin snapshot URL of the team
}

func newBenchStack(b *testing.B, size string) *benchStack {
	b.Helper()
	bus := backend.Bus(b, backend.NATS(b), pubsub.Config{})
	orig := backend.NewOrigin(b, backend.OriginConfig{World: backend.World(b, 1, size), Publisher: bus,
		Client: origin.ClientConfig{Timeout: time.Minute}})
	client := orig.Client
	keys, err := token.New([]byte(token.DevSecret))
	if err != nil {
		b.Fatal(err)
	}
	// No request quota: the benchmarks measure the path, not the limit.
	srv, err := edge.New(edge.Config{Cache: cache.Config{Origin: client, Feed: bus}, Replay: bus, Tokens: keys, RequestRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	ehs := httptest.NewServer(srv)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ehs.Close()
	})
	team := orig.TeamIDs()[0]
	return &benchStack{origin: orig.Server, edge: ehs, keys: keys, team: team, users: orig.Users(team),
		snap: orig.HTTP.URL + "/origin/v1/teams/" + team + "/snapshot"}
}

func (s *benchStack) token(b *testing.B, user string) string {
	tok, err := s.keys.Issue(s.team, user, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func (s *benchStack) dial(b *testing.B, user string) *websocket.Conn {
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(s.edge.URL, "http")+"/ws",
		&websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol},
			HTTPHeader: http.Header{"Authorization": {"Bearer " + s.token(b, user)}}})
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	if _, _, err := c.Read(context.Background()); err != nil { // hello
		b.Fatal(err)
	}
	return c
}

// roundTrips sends n requests one after another on c and returns each round trip's duration.
// It skips event frames (the stack runs no activity, so there are none).
func roundTrips(b *testing.B, c *websocket.Conn, n int, frame func(i int) []byte) []time.Duration {
	out := make([]time.Duration, 0, n)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		begin := time.Now()
		if err := c.Write(ctx, websocket.MessageText, frame(i)); err != nil {
			b.Error(err)
			return out
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Error(err)
			return out
		}
		out = append(out, time.Since(begin))
	}
	return out
}

func report(b *testing.B, lat []time.Duration, conns int) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(conns), "conns")
}

func usersInfo(users []origin.User) func(i int) []byte {
	return func(i int) []byte {
		ids := make([]string, 10)
		for k := range ids {
			ids[k] = users[(i*7+k*13)%len(users)].ID
		}
		p, _ := json.Marshal(ids)
		return fmt.Appendf(nil, `{"id":%d,"method":"users.info","params":{"users":%s}}`, i, p)
	}
}

func benchUsersInfo(b *testing.B, conns int) {
	s := newBenchStack(b, "small")
	cs := make([]*websocket.Conn, conns)
	for i := range cs {
		cs[i] = s.dial(b, s.users[i%len(s.users)].ID)
		defer cs[i].CloseNow()
	}
	b.ResetTimer()
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	per := max(b.N/conns, 1)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := roundTrips(b, c, per, usersInfo(s.users))
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	report(b, all, conns)
}

// users.info of 10 users per request, one connection, one request at a time.
func BenchmarkUsersInfo1Conn(b *testing.B) { benchUsersInfo(b, 1) }

// The same over 100 connections, each one request at a time.
func BenchmarkUsersInfo100Conns(b *testing.B) { benchUsersInfo(b, 100) }

// BenchmarkRawEcho is the baseline: a coder/websocket server that echoes each frame back.
func BenchmarkRawEcho(b *testing.B) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, p); err != nil {
				return
			}
		}
	}))
	defer hs.Close()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	frame := []byte(`{"id":1,"method":"users.info","params":{"users":["U00000001","U00000002"]}}`)
	b.ResetTimer()
	lat := roundTrips(b, c, b.N, func(int) []byte { return frame })
	b.StopTimer()
	report(b, lat, 1)
}

// BenchmarkBootBytes32k compares the lazy boot payload of users of the 32k team with the eager
// snapshot of the whole team that clients downloaded before Flannel.
func BenchmarkBootBytes32k(b *testing.B) {
	s := newBenchStack(b, "32k")
	req, _ := http.NewRequest(http.MethodGet, s.snap, nil)
	req.Header.Set("Authorization", "Bearer "+backend.ServiceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	snapshot, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var total int64
	for i := 0; b.Loop(); i++ {
		u := s.users[(i*7919)%len(s.users)]
		req, _ := http.NewRequest(http.MethodPost, s.edge.URL+"/api/boot", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+s.token(b, u.ID))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("boot: %s", resp.Status)
		}
		total += n
	}
	avg := float64(total) / float64(b.N)
	b.ReportMetric(avg, "boot-B")
	b.ReportMetric(float64(snapshot), "snapshot-B")
	b.ReportMetric(float64(snapshot)/avg, "x-smaller")
}

// keystrokes are what a person typing names into the Quick Switcher sends: each prefix of a
// user's real name, one keystroke at a time ("j", "jo", "joh", … "john s", "john sm").
func keystrokes(users []origin.User, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		name := strings.ToLower(users[(i*7919)%len(users)].RealName)
		for k := 1; k <= len(name) && k <= 8 && len(out) < n; k++ {
			if name[k-1] != ' ' {
				out = append(out, name[:k])
			}
		}
	}
	return out
}

// BenchmarkAutocompleteWS: autocomplete over a WebSocket on loopback, one keystroke at a time
// on one connection, on the giant team (366,000 users); the figures include JSON both ways.
//
//	go test ./edge -run '^$' -bench AutocompleteWS -benchtime 20000x
func BenchmarkAutocompleteWS(b *testing.B) {
	s := newBenchStack(b, "giant")
	c := s.dial(b, s.users[1].ID)
	defer c.CloseNow()
	keys := keystrokes(s.users, 4096)
	frame := func(i int) []byte {
		q, _ := json.Marshal(keys[i%len(keys)])
		return fmt.Appendf(nil, `{"id":%d,"method":"autocomplete","params":{"query":%s}}`, i, q)
	}
	roundTrips(b, c, 1, frame) // waits for the team's index to be built
	b.ResetTimer()
	lat := roundTrips(b, c, b.N, frame)
	b.StopTimer()
	report(b, lat, 1)
}
