package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	wstack "github.com/weft-edge/weft/internal/testkit/stack"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/proxy"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

const testSecret = "proxy-test-secret-0123456789"

// world is several edges and proxies in this process on one embedded NATS, real parts only:
// each edge and proxy has its own NATS connection and its own loopback listener, the origin is
// the reference origin behind a real HTTP server.
type world struct {
	t       testing.TB
	emb     *pubsub.Embedded
	origin  *reference.Server
	orig    *backend.Origin
	oc      *origin.Client
	keys    *token.Keys
	edgeFn  func(*edge.Config)
	proxyFn func(*proxy.Config)

	mu      sync.Mutex
	edges   map[string]*edgeNode
	proxies []*proxyNode
}

type edgeNode struct {
	name   string
	region string
	node   *wstack.Edge
	srv    *edge.Server
	bus    *pubsub.Bus
	addr   string
	loads  sync.Map // team → time its load finished
	dead   atomic.Bool
}

type proxyNode struct {
	srv    *proxy.Server
	bus    *pubsub.Bus
	url    string // http://host:port
	ops    string // http://host:port of its operator endpoints
	region string
}

func newWorld(t testing.TB, size string, edgeFn func(*edge.Config)) *world {
	t.Helper()
	return newWorldOn(t, backend.NATS(t), size, edgeFn)
}

// newWorldOn is newWorld on emb: one that listens, for a test that stops it and starts it
// again (the buses connect by its URL and reconnect).
func newWorldOn(t testing.TB, emb *pubsub.Embedded, size string, edgeFn func(*edge.Config)) *world {
	t.Helper()
	w := &world{t: t, edges: map[string]*edgeNode{}, edgeFn: edgeFn}
	var err error
	w.emb = emb
	w.orig = backend.NewOrigin(t, backend.OriginConfig{World: backend.World(t, 7, size), Publisher: w.bus("origin")})
	w.origin, w.oc = w.orig.Server, w.orig.Client
	w.keys, err = token.New([]byte(testSecret))
	must(t, err)
	return w
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// bus is a new NATS connection, closed at cleanup (closing twice is fine).
func (w *world) bus(name string) *pubsub.Bus {
	return backend.Bus(w.t, w.emb, pubsub.Config{Name: name})
}

// addEdge starts an edge that joins the ring (of the default region).
func (w *world) addEdge(name string) *edgeNode {
	w.t.Helper()
	return w.addEdgeIn(name, "")
}

// addEdgeIn starts an edge of region ("": the default) that joins its region's ring.
func (w *world) addEdgeIn(name, region string) *edgeNode {
	w.t.Helper()
	n := &edgeNode{name: name, bus: w.bus(name), region: ring.RegionOr(region)}
	n.node = wstack.StartEdge(w.t, func(addr string) edge.Config {
		cfg := wstack.EdgeConfig(w.orig, n.bus, w.keys, name)
		cfg.ConnectRate, cfg.TeamConnectRate = 0, 0 // the edge's own quotas, as in production
		cfg.Cache.Hooks.OnLoad = func(team string, _ time.Duration, err error) {
			if err == nil {
				n.loads.LoadOrStore(team, time.Now())
			}
		}
		cfg.Index = indexOff
		cfg.Region = region
		cfg.Cluster = &edge.ClusterConfig{Peers: n.bus, Addr: addr, Interval: 100 * time.Millisecond, MoveSpread: time.Second}
		if w.edgeFn != nil {
			w.edgeFn(&cfg)
		}
		return cfg
	})
	n.srv, n.addr = n.node.Server(), n.node.Addr
	w.mu.Lock()
	w.edges[name] = n
	w.mu.Unlock()
	w.t.Cleanup(func() { w.stopEdge(n, false) })
	return n
}

// stopEdge shuts an edge down; with crash it vanishes as a killed process would: its
// connections are cut, its address refuses, its announcements stop, and only then is it shut
// down (so it announces no drain).
func (w *world) stopEdge(n *edgeNode, crash bool) {
	if !n.dead.CompareAndSwap(false, true) {
		return
	}
	if crash {
		n.node.Crash()
		n.node.Close()
		n.bus.Close()
		n.node.Stop()
		return
	}
	if err := n.node.Stop(); err != nil {
		w.t.Errorf("edge %s: %v", n.name, err)
	}
	n.node.Close()
	n.bus.Close()
}

// addProxy starts a proxy that watches the edges' announcements.
func (w *world) addProxy() *proxyNode {
	w.t.Helper()
	return w.addProxyIn("")
}

// addProxyIn starts a proxy of region ("": the default) that falls back to the regions of
// fallback, in order.
func (w *world) addProxyIn(region string, fallback ...string) *proxyNode {
	w.t.Helper()
	p := &proxyNode{bus: w.bus("proxy"), region: ring.RegionOr(region)}
	cfg := proxy.Config{Tokens: w.keys, Watch: p.bus, Region: region, Fallback: fallback}
	if w.proxyFn != nil {
		w.proxyFn(&cfg)
	}
	sp := wstack.StartProxy(w.t, cfg)
	p.srv, p.url, p.ops = sp.Server, sp.URL, sp.OpsURL
	w.mu.Lock()
	w.proxies = append(w.proxies, p)
	w.mu.Unlock()
	return p
}

func (w *world) waitRing(names ...string) {
	w.t.Helper()
	w.waitRegion(ring.DefaultRegion, names...)
}

// waitRegion waits until every proxy and live edge of region has the ring of names.
func (w *world) waitRegion(region string, names ...string) {
	w.t.Helper()
	want := fmt.Sprint(sorted(names))
	defer func() {
		if w.t.Failed() {
			for _, p := range w.proxies {
				w.t.Logf("proxy sees %v down %v", p.srv.Membership().View().Ring.Nodes(), p.srv.Membership().View().Down)
			}
			for _, e := range w.edges {
				w.t.Logf("%s (dead %v) sees %v", e.name, e.dead.Load(), e.srv.Membership().View().Ring.Nodes())
			}
		}
	}()
	testkit.Eventually(w.t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, p := range w.proxies {
			if p.region == region && fmt.Sprint(p.srv.Membership().View().Ring.Nodes()) != want {
				return false
			}
		}
		for _, e := range w.edges {
			if e.region == region && !e.dead.Load() && fmt.Sprint(e.srv.Membership().View().Ring.Nodes()) != want {
				return false
			}
		}
		return true
	}, "ring of region "+region+": "+want)
}

func (w *world) token(team, user string) string {
	tok, err := w.keys.Issue(team, user, time.Hour)
	must(w.t, err)
	return tok
}

// dial connects a client for (team, user) through the proxy at base.
func (w *world) dial(base, team, user string, edit func(*client.Options)) *client.Client {
	w.t.Helper()
	o := client.Options{URL: "ws" + base[len("http"):] + "/ws", Token: w.token(team, user),
		Backoff: client.Backoff{Min: 50 * time.Millisecond, Max: time.Second}}
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, o)
	must(w.t, err)
	w.t.Cleanup(func() { c.Close() })
	return c
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// indexOff keeps the edges' autocomplete to its prefix path: no bleve fallback builds.
var indexOff = index.Config{NoFuzzy: true}

// recorder keeps every event seq a client handed over, and says whether one came twice or
// out of order.
type recorder struct {
	mu   sync.Mutex
	seqs map[int64]bool
	last int64
	bad  []string
}

func record(c *client.Client) *recorder {
	r := &recorder{seqs: map[int64]bool{}}
	go func() {
		for ev := range c.Events() {
			r.mu.Lock()
			if ev.Seq <= r.last {
				r.bad = append(r.bad, fmt.Sprintf("seq %d after %d", ev.Seq, r.last))
			}
			r.last = ev.Seq
			r.seqs[ev.Seq] = true
			r.mu.Unlock()
		}
	}()
	return r
}

// has reports whether every one of seqs was received.
func (r *recorder) has(seqs []int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range seqs {
		if !r.seqs[s] {
			return false
		}
	}
	return true
}

func (r *recorder) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

// teamEvent publishes a team_change of team through the origin and returns its seq.
func (w *world) teamEvent(team string) int64 {
	w.t.Helper()
	ev, err := w.origin.UpdateTeam(context.Background(), team, func(t *origin.Team) { t.Name += "+" })
	must(w.t, err)
	return ev.Seq
}
