package regiontest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/testkit/natscluster"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/internal/wan"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) {
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		natscluster.Remove()
		os.Exit(code)
	}))
}

const testSecret = "regiontest-secret-0123456789"

// The issue's round trips between the home region and the two edge regions.
const (
	rttA = 80 * time.Millisecond
	rttB = 150 * time.Millisecond
)

// hubReplicas is the stream of record's replica count on the hub's three servers.
const hubReplicas = 3

// system is weft in three regions: the hub (home region) with the origin, and two edge
// regions behind WAN links, each with a leaf node and its edges.
type system struct {
	t       *testing.T
	hub     *natscluster.Cluster
	origin  *backend.Origin
	keys    *token.Keys
	regions []*region

	mu        sync.Mutex
	published map[string]map[int64]time.Time // team → seq → when the origin was asked for it
}

// region is an edge region: its WAN link to the hub, what came down the link, its leaf node
// server and its edges, each with its own NATS connection to the leaf node.
type region struct {
	name, domain string
	link         *wan.Link
	wire         *wire
	leaf         *natscluster.Cluster
	edges        []*wstack.Edge
	buses        []*pubsub.Bus
	names        []string      // of its clustered edges (proxied_test.go)
	proxy        *wstack.Proxy // its proxy, when it has one
}

// regionSpec is a region to build: its name, the RTT of its link to the hub, its edge count.
type regionSpec struct {
	name  string
	rtt   time.Duration
	edges int
}

// newRegions builds the hub, the regions (leaf node connected through its link) and the
// origin (the stream's owner, keeping a mirror in each region); no edge yet.
func newRegions(t *testing.T, specs ...regionSpec) *system {
	t.Helper()
	s := &system{t: t, keys: wstack.Keys(t, testSecret), published: map[string]map[int64]time.Time{}}
	s.hub = natscluster.StartWith(t, 3, natscluster.Options{Name: "hub", Domain: "hub", LeafNodes: true})
	var mirrors []string
	for _, sp := range specs {
		r := &region{name: sp.name, domain: "region-" + sp.name, wire: &wire{down: map[uint64]*bytes.Buffer{}}}
		link, err := wan.Listen(wan.Config{Upstreams: s.hub.LeafAddrs(), RTT: sp.rtt, Tap: r.wire.tap})
		testkit.OK(t, err)
		t.Cleanup(func() { testkit.OK(t, link.Close()) })
		r.link = link
		r.leaf = natscluster.StartWith(t, 1, natscluster.Options{Name: "leaf-" + sp.name, Domain: r.domain,
			Remotes: []string{"nats-leaf://" + link.Addr()}})
		s.regions = append(s.regions, r)
		mirrors = append(mirrors, r.domain)
	}
	for _, r := range s.regions {
		r.waitLeafConnected(t)
	}
	pub := s.bus(pubsub.Config{Name: "weft-origin", URL: s.hub.URLs(), ManageStream: true,
		Stream: pubsub.StreamConfig{Replicas: hubReplicas, Mirrors: mirrors}})
	s.hub.WaitStreamCurrent(t, pub.Conn(), pubsub.StreamName, hubReplicas)
	s.origin = backend.NewOrigin(t, backend.OriginConfig{World: backend.World(t, 19, "small"), Publisher: pub})
	return s
}

// newSystem builds the hub, the regions (leaf node connected through its link), the origin
// (the stream's owner, keeping a mirror in each region) and the regions' edges, standalone
// (no ring: clients dial them straight).
func newSystem(t *testing.T, specs ...regionSpec) *system {
	t.Helper()
	s := newRegions(t, specs...)
	for i, sp := range specs {
		r := s.regions[i]
		for j := range sp.edges {
			name := fmt.Sprintf("edge-%s%d", r.name, j+1)
			// The edge names no domain: on its region's leaf node, WEFT_EVENTS is the mirror.
			// The hub's stream is its fallback for what the mirror lags behind on.
			bus := s.bus(pubsub.Config{Name: "weft-" + name, URL: r.leaf.URL(0), FallbackDomain: "hub"})
			r.buses = append(r.buses, bus)
			r.edges = append(r.edges, wstack.StartEdge(t, func(addr string) edge.Config {
				c := wstack.EdgeConfig(s.origin, bus, s.keys, name)
				c.Index = index.Config{NoFuzzy: true} // no bleve builds: CPU for the test's traffic
				return c
			}))
		}
	}
	return s
}

// bus connects a weft process's bus, closed at cleanup. A bus that only uses the stream is
// retried while the stream is missing: a region's mirror is made by the origin's bus in the
// background, a moment after it connected.
func (s *system) bus(cfg pubsub.Config) *pubsub.Bus {
	s.t.Helper()
	var b *pubsub.Bus
	var last error
	testkit.EventuallyOr(s.t, natscluster.ReadyWithin, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, last = pubsub.Connect(ctx, cfg)
		return last == nil
	}, "bus "+cfg.Name+" connected", func() { s.t.Logf("last error: %v", last) })
	s.t.Cleanup(b.Close)
	return b
}

// waitLeafConnected waits until the region's leaf node has its connection to the hub.
func (r *region) waitLeafConnected(t *testing.T) {
	t.Helper()
	testkit.EventuallyWithin(t, natscluster.ReadyWithin, func() bool {
		n, err := r.leaf.Leafs(0)
		return err == nil && n == 1
	}, "leaf node of region "+r.name+" connected to the hub")
}

// logMirror logs the state of the region's mirror, as its server reports it.
func (r *region) logMirror(t *testing.T) {
	js, err := jetstream.New(r.leaf.Conn(t))
	testkit.OK(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, pubsub.StreamName)
	if err != nil {
		t.Logf("region %s: mirror: %v", r.name, err)
		return
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Logf("region %s: mirror info: %v", r.name, err)
		return
	}
	m, _ := json.Marshal(info.Mirror)
	t.Logf("region %s: mirror holds seqs %d..%d; its source: %s", r.name, info.State.FirstSeq, info.State.LastSeq, m)
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

// change makes one team-wide change at the origin (every session of the team is owed its
// event) and records when it was asked for.
func (s *system) change(ctx context.Context, team string, i int) error {
	at := time.Now()
	ev, err := s.origin.UpdateTeam(ctx, team, func(t *origin.Team) { t.Name = fmt.Sprintf("team %d", i) })
	if ev != nil {
		s.mu.Lock()
		if s.published[team] == nil {
			s.published[team] = map[int64]time.Time{}
		}
		s.published[team][ev.Seq] = at
		s.mu.Unlock()
	}
	return err
}

// changes makes n changes of team, one after the other.
func (s *system) changes(team string, n int) {
	s.t.Helper()
	for i := range n {
		testkit.OK(s.t, s.change(context.Background(), team, i))
	}
}

// traffic changes teams at the origin every interval until stopped.
type traffic struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	failed atomic.Int64
	flush  func() error
}

func (s *system) drive(teams []string, every time.Duration) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel, flush: func() error { return s.origin.Flush(context.Background()) }}
	for _, team := range teams {
		tr.wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if err := s.change(ctx, team, i); err != nil && ctx.Err() == nil {
					tr.failed.Add(1)
				}
			}
		})
	}
	return tr
}

// stop stops the changes and publishes what the origin still holds: a change whose publish the
// stop cancelled may have reached the stream (and the clients) while the origin, which never
// saw the ack, keeps the event pending and its published seq one short. Flush publishes it
// again (the stream drops the copy by its id) and the origin's seq is right again.
// (Seen: a session with 489 events while the origin said 488.)
func (tr *traffic) stop(t testing.TB) {
	tr.cancel()
	tr.wg.Wait()
	// Retried: while the cancelled publish is still in process at the stream, the same id is
	// refused (409 "duplicate message id is in process") until it settles.
	var last error
	testkit.EventuallyOr(t, 30*time.Second, func() bool {
		last = tr.flush()
		return last == nil
	}, "the origin's pending events published", func() { t.Logf("last flush: %v", last) })
}

// session is a client of one edge and everything it handed over.
type session struct {
	region     *region
	team, user string
	c          *client.Client
	from       int64 // the seq of its first hello: it is owed every event after it

	mu         sync.Mutex
	seqs       []int64
	at         []time.Time // when each was handed over
	reconnects atomic.Int64
	goodbyes   []string // the reasons of the goodbyes its reconnects followed, under mu
}

// dial connects a client for (team, user) straight to edge i of region r.
func (s *system) dial(r *region, i int, team, user string) *session {
	s.t.Helper()
	return s.dialURL(r, r.edges[i].URL("ws")+"/ws", team, user)
}

// dialURL connects a client of region r for (team, user) to the WebSocket endpoint url.
func (s *system) dialURL(r *region, url, team, user string) *session {
	s.t.Helper()
	ss := &session{region: r, team: team, user: user}
	tok, err := s.keys.Issue(team, user, time.Hour)
	testkit.OK(s.t, err)
	o := client.Options{URL: url, Token: tok,
		Backoff: client.Backoff{Min: 50 * time.Millisecond, Max: time.Second},
		OnReconnect: func(rc client.Reconnect) {
			ss.reconnects.Add(1)
			if rc.Goodbye != nil {
				ss.mu.Lock()
				ss.goodbyes = append(ss.goodbyes, rc.Goodbye.Reason)
				ss.mu.Unlock()
			}
		}}
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
			ss.at = append(ss.at, now)
			ss.mu.Unlock()
		}
	}()
	s.t.Cleanup(func() {
		c.Close()
		<-done
	})
	return ss
}

func (ss *session) String() string {
	return fmt.Sprintf("%s/%s in region %s", ss.team, ss.user, ss.region.name)
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
// order, the server never sent one twice, and the session never had to reconnect.
func (ss *session) check(t *testing.T, to int64) {
	t.Helper()
	ss.checkSeqs(t, to)
	if n := ss.reconnects.Load(); n != 0 {
		t.Errorf("%s: reconnected %d times", ss, n)
	}
}

// checkSeqs is check for a session that may have reconnected (resuming where it was).
func (ss *session) checkSeqs(t *testing.T, to int64) {
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
		t.Errorf("%s: %d events for seqs %d..%d, want %d: %v", ss, len(got), ss.from+1, to, to-ss.from, bad)
	}
	if d := ss.c.Stats().Duplicates; d != 0 {
		t.Errorf("%s: the server sent %d events twice", ss, d)
	}
}

// waitSeqs waits until every session has been handed its team's events up to target.
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
			s.t.Logf("%s at %d of %d (origin published %d)", ss, ss.last(), target[ss.team], s.origin.Seq(ss.team))
		}
	})
}

// waitCaughtUp waits until every session has its team's events up to the origin's seq now.
func (s *system) waitCaughtUp(sessions []*session, within time.Duration) {
	s.t.Helper()
	target := map[string]int64{}
	for _, ss := range sessions {
		target[ss.team] = s.origin.Seq(ss.team)
	}
	s.waitSeqs(sessions, target, within)
}

// latencies are, for the events of ss's team with seq in (from, to], the time from the
// origin being asked for each change to ss's client having it.
func (s *system) latencies(ss *session, from, to int64) []time.Duration {
	s.mu.Lock()
	pub := s.published[ss.team]
	var d []time.Duration
	ss.mu.Lock()
	for i, seq := range ss.seqs {
		if at, ok := pub[seq]; ok && seq > from && seq <= to {
			d = append(d, ss.at[i].Sub(at))
		}
	}
	ss.mu.Unlock()
	s.mu.Unlock()
	slices.Sort(d)
	return d
}

// wire keeps every byte the hub sent down a region's link, per connection, for counting the
// messages that crossed it.
type wire struct {
	mu   sync.Mutex
	down map[uint64]*bytes.Buffer
}

func (w *wire) tap(conn uint64, dir wan.Direction, b []byte) {
	if dir != wan.Down {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := w.down[conn]
	if buf == nil {
		buf = &bytes.Buffer{}
		w.down[conn] = buf
	}
	buf.Write(b)
}

// crossings counts, per seq of team, the messages carrying that event that came down the
// link: all of them (each carries the event's Nats-Msg-Id header, "<team>:<seq>") and of
// them the live ones (core NATS deliveries on the team's subject: "HMSG weft.events.<team> "
// or "LMSG ...", the leaf node protocol's message lines); the others are the mirror's
// (delivered to its consumer's subject). A leaf node connection is compressed (S2, the
// servers' default on leaf nodes): each connection's bytes are decompressed first.
func (w *wire) crossings(team string) (all, live map[int64]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	all, live = map[int64]int{}, map[int64]int{}
	idTag := []byte("Nats-Msg-Id: " + team + ":")
	liveTag := []byte("MSG " + origin.Subject(team) + " ")
	for _, buf := range w.down {
		b := plain(buf.Bytes())
		lives := map[int]bool{} // offsets of the headers of live messages
		for off := 0; ; {
			i := bytes.Index(b[off:], liveTag)
			if i < 0 {
				break
			}
			off += i + len(liveTag)
			if j := bytes.Index(b[off:], idTag); j >= 0 {
				lives[off+j] = true
			}
		}
		for off := 0; ; {
			i := bytes.Index(b[off:], idTag)
			if i < 0 {
				break
			}
			at := off + i
			off = at + len(idTag)
			end := bytes.IndexByte(b[off:], '\r')
			if end < 0 {
				break
			}
			seq, err := strconv.ParseInt(string(b[off:off+end]), 10, 64)
			if err != nil {
				continue
			}
			all[seq]++
			if lives[at] {
				live[seq]++
			}
		}
	}
	return all, live
}

// plainBytes is how many bytes came down the link once decompressed.
func (w *wire) plainBytes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, buf := range w.down {
		n += len(plain(buf.Bytes()))
	}
	return n
}

// s2Stream begins an S2 stream: what a leaf node connection switches to after its handshake.
var s2Stream = []byte("\xff\x06\x00\x00S2sTwO")

// plain is b with its S2 stream, if any, decompressed; a chunk cut short at the end (still
// in flight) is left out.
func plain(b []byte) []byte {
	i := bytes.Index(b, s2Stream)
	if i < 0 {
		return b
	}
	dec, _ := io.ReadAll(s2.NewReader(bytes.NewReader(b[i:])))
	return append(b[:i:i], dec...)
}
