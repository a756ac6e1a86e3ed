package clustertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/testkit/natscluster"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
	"github.com/weft-edge/weft/proxy"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) {
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		natscluster.Remove()
		weftBin.Remove()
		weftProxyBin.Remove()
		os.Exit(code)
	}))
}

const testSecret = "clustertest-secret-0123456789"

// system is weft on NATS: a real cluster of three servers (or, for the benchmark's baseline,
// one embedded server on a loopback port), the reference origin as the stream's owner, two
// edges in a ring and a proxy in front of them, each with its own NATS connection.
type system struct {
	t      testing.TB
	nats   *natscluster.Cluster // nil on the embedded server
	emb    *pubsub.Embedded
	origin *backend.Origin
	keys   *token.Keys
	edges  []*wstack.Edge
	proxy  *wstack.Proxy
	hc     *http.Client
	buses  map[string]*pubsub.Bus // each weft process's connection, by its name
}

// systemConfig configures newSystem.
type systemConfig struct {
	// Embedded runs one embedded NATS server (stream R1) instead of a cluster of three (R3).
	Embedded bool
	// Size is the reference world's size; "" = small (100 teams: warm and cold ones).
	Size string
}

// replicas is the stream's replica count on the cluster.
const replicas = 3

func newSystem(t testing.TB, cfg systemConfig) *system {
	t.Helper()
	if cfg.Size == "" {
		cfg.Size = "small"
	}
	s := &system{t: t, keys: wstack.Keys(t, testSecret), buses: map[string]*pubsub.Bus{},
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	t.Cleanup(s.hc.CloseIdleConnections)
	stream := pubsub.StreamConfig{Replicas: replicas}
	if cfg.Embedded {
		s.emb = backend.ListeningNATS(t)
		stream.Replicas = 1
	} else {
		s.nats = natscluster.Start(t, 3)
	}
	// The origin side owns the stream: it creates it, with three replicas on the cluster.
	pub := s.bus("weft-origin", &stream)
	if s.nats != nil {
		s.nats.WaitStreamCurrent(t, pub.Conn(), pubsub.StreamName, replicas)
	}
	s.origin = backend.NewOrigin(t, backend.OriginConfig{World: backend.World(t, 18, cfg.Size), Publisher: pub})
	for _, name := range []string{"edge-a", "edge-b"} {
		bus := s.bus("weft-edge-"+name, nil)
		s.edges = append(s.edges, wstack.StartEdge(t, func(addr string) edge.Config {
			c := wstack.EdgeConfig(s.origin, bus, s.keys, name)
			c.Index = index.Config{NoFuzzy: true} // no bleve builds: CPU for the test's traffic
			// Announcements at the default interval (1s, dropped after five missed): a NATS
			// server's death costs a reconnect of well under that.
			c.Cluster = &edge.ClusterConfig{Peers: bus, Addr: addr}
			return c
		}))
	}
	s.proxy = wstack.StartProxy(t, proxy.Config{Tokens: s.keys, Watch: s.bus("weft-proxy", nil)})
	s.waitRing()
	return s
}

// bus is a new NATS connection of a weft process, with every server as a seed; stream, when
// not nil, makes it the stream's owner. Closed at cleanup.
func (s *system) bus(name string, stream *pubsub.StreamConfig) *pubsub.Bus {
	s.t.Helper()
	cfg := pubsub.Config{Name: name}
	if s.nats != nil {
		cfg.URL = s.nats.URLs()
	} else {
		cfg.Embedded = s.emb
	}
	if stream != nil {
		cfg.ManageStream, cfg.Stream = true, *stream
	}
	ctx, cancel := context.WithTimeout(context.Background(), natscluster.ReadyWithin)
	defer cancel()
	b, err := pubsub.Connect(ctx, cfg)
	testkit.OK(s.t, err)
	s.t.Cleanup(b.Close)
	s.buses[name] = b
	return b
}

// waitRing waits until the proxy and both edges see both edges in the ring.
func (s *system) waitRing() {
	s.t.Helper()
	want := fmt.Sprint([]string{"edge-a", "edge-b"})
	testkit.EventuallyOr(s.t, 30*time.Second, func() bool {
		if fmt.Sprint(s.proxy.Server.Membership().View().Ring.Nodes()) != want {
			return false
		}
		for _, e := range s.edges {
			if fmt.Sprint(e.Server().Membership().View().Ring.Nodes()) != want {
				return false
			}
		}
		return true
	}, "ring "+want, func() {
		s.t.Logf("proxy sees %v", s.proxy.Server.Membership().View().Ring.Nodes())
	})
}

// users returns n active users of team.
func (s *system) users(team string, n int) []string {
	s.t.Helper()
	var out []string
	for _, u := range s.origin.Users(team) {
		if !u.Deleted && len(out) < n {
			out = append(out, u.ID)
		}
	}
	testkit.True(s.t, len(out) == n, "team %s has %d active users, want %d", team, len(out), n)
	return out
}

func (s *system) token(team, user string) string {
	tok, err := s.keys.Issue(team, user, time.Hour)
	testkit.OK(s.t, err)
	return tok
}

// session is a client through the proxy and everything it handed over.
type session struct {
	team, user string
	c          *client.Client
	from       int64 // the seq of its first hello: it is owed every event after it

	mu         sync.Mutex
	seqs       []int64 // every event's seq, in the order handed over
	lat        []time.Duration
	reconnects atomic.Int64
}

// dial connects a client for (team, user) through the proxy and records its events.
func (s *system) dial(team, user string) *session {
	s.t.Helper()
	ss := &session{team: team, user: user}
	o := client.Options{URL: "ws" + s.proxy.URL[len("http"):] + "/ws", Token: s.token(team, user),
		Backoff:     client.Backoff{Min: 50 * time.Millisecond, Max: time.Second},
		OnReconnect: func(client.Reconnect) { ss.reconnects.Add(1) }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, o)
	testkit.OK(s.t, err)
	ss.c, ss.from = c, c.Hello().Seq
	done := make(chan struct{})
	go func() { // ends when Close closes Events
		defer close(done)
		for ev := range c.Events() {
			now := time.Now()
			ss.mu.Lock()
			ss.seqs = append(ss.seqs, ev.Seq)
			if ts, ok := messageTime(ev); ok {
				ss.lat = append(ss.lat, now.Sub(ts))
			}
			ss.mu.Unlock()
		}
	}()
	s.t.Cleanup(func() {
		c.Close()
		<-done
	})
	return ss
}

// last is the seq of the last event handed over (from when none was).
func (ss *session) last() int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.seqs) == 0 {
		return ss.from
	}
	return ss.seqs[len(ss.seqs)-1]
}

// check fails t unless ss was handed every event after from up to to, each once and in
// order, and the server never sent one twice.
func (ss *session) check(t testing.TB, to int64) {
	t.Helper()
	ss.mu.Lock()
	got := slices.Clone(ss.seqs)
	ss.mu.Unlock()
	var bad []string
	want := ss.from + 1
	for _, seq := range got {
		if seq != want {
			bad = append(bad, fmt.Sprintf("seq %d where %d was due", seq, want))
			if len(bad) == 5 {
				break
			}
		}
		want = seq + 1
	}
	if len(bad) > 0 || int64(len(got)) != to-ss.from {
		t.Errorf("%s/%s: %d events for seqs %d..%d, want %d: %v", ss.team, ss.user, len(got), ss.from+1, to,
			to-ss.from, bad)
	}
	// The client drops an event it has handed over already: the server sent it twice.
	if d := ss.c.Stats().Duplicates; d != 0 {
		t.Errorf("%s/%s: the server sent %d events twice", ss.team, ss.user, d)
	}
}

// waitCaughtUp waits until every session has been handed its team's events up to the
// origin's published seq as it is now.
func (s *system) waitCaughtUp(sessions []*session, within time.Duration) {
	s.t.Helper()
	target := map[string]int64{}
	for _, ss := range sessions {
		target[ss.team] = s.origin.Seq(ss.team)
	}
	s.waitSeqs(sessions, target, within)
}

func (s *system) waitSeqs(sessions []*session, target map[string]int64, within time.Duration) {
	s.t.Helper()
	testkit.EventuallyOr(s.t, within, func() bool {
		for _, ss := range sessions {
			if ss.last() < target[ss.team] {
				return false
			}
		}
		return true
	}, "every session caught up", func() {
		for _, ss := range sessions {
			s.t.Logf("%s/%s at %d of %d (origin published %d)", ss.team, ss.user, ss.last(), target[ss.team],
				s.origin.Seq(ss.team))
		}
	})
}

// waitProgress waits until the origin has published n more events of every team of sessions
// than now and every session has them: traffic flows end to end.
func (s *system) waitProgress(sessions []*session, n int64, within time.Duration) {
	s.t.Helper()
	target := map[string]int64{}
	for _, ss := range sessions {
		target[ss.team] = s.origin.Seq(ss.team) + n
	}
	s.waitSeqs(sessions, target, within)
}

// flush publishes whatever the origin still holds pending, retrying until NATS takes it.
func (s *system) flush(within time.Duration) {
	s.t.Helper()
	var last error
	testkit.EventuallyOr(s.t, within, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		last = s.origin.Flush(ctx)
		return last == nil
	}, "the origin's pending events published", func() { s.t.Logf("last flush: %v", last) })
}

// traffic changes teams at the origin, each team every interval, until stopped: team-wide
// changes only (the team's name, a user's title), so that every session of a team is owed
// every event of it. A change whose publish fails stays pending at the origin, which queues
// the team's later changes behind it and publishes them in order once the bus takes them
// (reference.Server's outbox).
type traffic struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	applied atomic.Int64
	failed  atomic.Int64
}

func (s *system) drive(teams []string, every time.Duration) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel}
	for ti, team := range teams {
		users := s.origin.Users(team)
		tr.wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := ti; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				var ev *origin.Event
				var err error
				if i%2 == 0 {
					ev, err = s.origin.UpdateTeam(ctx, team, func(t *origin.Team) { t.Name = fmt.Sprintf("team %d", i) })
				} else {
					u := users[i%len(users)].ID
					ev, err = s.origin.UpdateUser(ctx, team, u, func(u *origin.User) { u.Title = fmt.Sprintf("title %d", i) })
				}
				if ev != nil {
					tr.applied.Add(1)
				}
				if err != nil {
					tr.failed.Add(1)
				}
			}
		})
	}
	return tr
}

// stop stops the traffic and waits for its goroutines.
func (tr *traffic) stop() {
	tr.cancel()
	tr.wg.Wait()
}

// apiCall is one POST /api/<method> through the proxy as (team, user): the HTTP status and
// the protocol error, if the call failed.
func (s *system) apiCall(team, user, method string, params any) (int, *protocol.Error, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, s.proxy.URL+"/api/"+method, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token(team, user))
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var reply struct {
		OK    bool            `json:"ok"`
		Error *protocol.Error `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("decoding the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusOK && reply.OK {
		return resp.StatusCode, nil, nil
	}
	if reply.Error == nil {
		reply.Error = &protocol.Error{Code: "(none)"}
	}
	return resp.StatusCode, reply.Error, nil
}

// messageTime is when the origin made a message event: its ts, microseconds since the epoch.
func messageTime(ev *client.Event) (time.Time, bool) {
	if ev.Type != client.EventMessage || ev.TS == "" {
		return time.Time{}, false
	}
	var sec, usec int64
	if _, err := fmt.Sscanf(ev.TS, "%d.%d", &sec, &usec); err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, usec*1000), true
}

// quantile is the q-quantile of d (sorted in place).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(int(q*float64(len(d))), len(d)-1)]
}
