// Package natscluster runs a cluster of real nats-server processes with JetStream for tests:
// what an operator runs, as separate processes that a test can kill (SIGKILL), stop and start
// again on the same ports and store. The server is built once per test binary from the
// nats-server module this module already requires (go.sum pins its version), so no package
// needs installing. Tests only.
//
// A test binary that uses it removes the built server after its tests, from TestMain:
//
//	func TestMain(m *testing.M) {
//		testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) { natscluster.Remove(); os.Exit(code) }))
//	}
package natscluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/testkit"
)

// serverBin is the nats-server of this test binary, built by the first Start.
var serverBin = testkit.Built{Build: build}

// build compiles nats-server from the module in go.mod into dir.
func build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("natscluster: go build nats-server: %w\n%s", err, out)
	}
	return bin, nil
}

// Remove deletes the built server, if one was built: call it from TestMain after the tests.
func Remove() { serverBin.Remove() }

// ReadyWithin bounds the waits for a cluster to be ready: a JetStream cluster elects its meta
// leader and then each stream's leader, each election taking seconds, on a busy 2-core machine.
const ReadyWithin = 60 * time.Second

// healthEvery is how often WaitReady asks the servers.
const healthEvery = 100 * time.Millisecond

// stopWithin bounds a graceful stop (SIGTERM) before the process is killed instead.
const stopWithin = 30 * time.Second

// Cluster is N nats-server processes routed to each other, each with JetStream, on loopback.
type Cluster struct {
	t     testing.TB
	bin   string
	nodes []*node
	hc    *http.Client
}

// node is one server: its ports, config and store stay the same across restarts.
type node struct {
	name    string
	client  int
	monitor int
	leaf    int // its leaf node port, when the cluster takes leaf nodes
	conf    string
	log     testkit.SyncBuffer // every life's output, one after the other

	mu   sync.Mutex
	cmd  *exec.Cmd     // the running process; nil when stopped
	done chan struct{} // closed when that process has exited and been waited for
	life int
}

// Start starts a cluster of n servers and waits until it is ready (WaitReady). Every process
// is killed at cleanup; when the test failed, each server's log goes to the test log.
func Start(t testing.TB, n int) *Cluster { return StartWith(t, n, Options{}) }

// Options shape a cluster beyond its size: the hub of a supercluster of leaf nodes, or the
// leaf nodes of an edge region (docs/architecture.md, "Regions").
type Options struct {
	// Name names the cluster and prefixes its servers' names (hub: hub-n0, hub-n1, ...), which
	// must differ across clusters joined by leaf nodes. "" = cluster weft-test, servers n0, n1...
	Name string
	// Domain is the JetStream domain of the cluster's servers. "" = none.
	Domain string
	// LeafNodes makes every server accept leaf node connections, on a port of its own
	// (LeafAddr), without advertising the cluster's leaf node ports to the leaf nodes.
	LeafNodes bool
	// Remotes are the leaf node URLs (nats-leaf://host:port) every server of the cluster
	// connects to as a leaf node, tried in turn.
	Remotes []string
}

// StartWith starts a cluster of n servers shaped by opts and waits until it is ready
// (WaitReady). Every process is killed at cleanup; when the test failed, each server's log
// goes to the test log. One server has no cluster block: a server alone is not a cluster.
func StartWith(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natscluster: %d servers", n)
	}
	c := &Cluster{t: t, bin: serverBin.Path(t), hc: &http.Client{Timeout: 5 * time.Second}}
	dir := t.TempDir() // removed after the cleanup below, which kills the servers first
	t.Cleanup(func() {
		c.killAll()
		c.hc.CloseIdleConnections()
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("nats-server %s (client port %d) log:\n%s", nd.name, nd.client, tail(nd.log.String(), 16<<10))
			}
		}
	})
	// A port found free may be taken before the server binds it (by another test binary's
	// cluster starting at the same moment): then the cluster starts again on other ports.
	for attempt := 1; ; attempt++ {
		c.nodes = configure(t, filepath.Join(dir, fmt.Sprint(attempt)), n, opts)
		for i := range c.nodes {
			c.Start(i)
		}
		nd := c.waitListening(t)
		if nd == nil {
			break
		}
		c.killAll()
		log := nd.log.String()
		if attempt == 3 || !strings.Contains(log, "address already in use") {
			t.Fatalf("natscluster: %s exited at start; its log:\n%s", nd.name, tail(log, 8<<10))
		}
		t.Logf("natscluster: a port of %s was taken before it bound it; starting on other ports", nd.name)
	}
	c.WaitReady(t)
	return c
}

// portsPerNode: client, route, monitor and leaf node ports.
const portsPerNode = 4

// configure writes the config files of n servers routed to each other, on ports free now,
// with their stores under dir.
func configure(t testing.TB, dir string, n int, opts Options) []*node {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	clusterName, prefix := "weft-test", ""
	if opts.Name != "" {
		clusterName, prefix = opts.Name, opts.Name+"-"
	}
	ports := freePorts(t, portsPerNode*n)
	var nodes []*node
	for i := range n {
		p := ports[portsPerNode*i:]
		nodes = append(nodes, &node{name: fmt.Sprintf("%sn%d", prefix, i), client: p[0], monitor: p[2], leaf: p[3]})
	}
	for i, nd := range nodes {
		var b strings.Builder
		fmt.Fprintf(&b, "server_name: %q\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\n", nd.name, nd.client, nd.monitor)
		fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_memory_store: 256MB\n  max_file_store: 2GB\n",
			filepath.Join(dir, nd.name, "store"))
		if opts.Domain != "" {
			fmt.Fprintf(&b, "  domain: %q\n", opts.Domain)
		}
		b.WriteString("}\n")
		if n > 1 {
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", ports[portsPerNode*j+1])))
				}
			}
			fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n",
				clusterName, ports[portsPerNode*i+1], strings.Join(routes, ", "))
		}
		if opts.LeafNodes || len(opts.Remotes) > 0 {
			b.WriteString("leafnodes {\n")
			if opts.LeafNodes {
				// no_advertise: a leaf node keeps to the URLs it was given (a WAN link in
				// front of the hub) instead of learning the hub servers' own addresses and
				// reconnecting around the link when it is cut.
				fmt.Fprintf(&b, "  listen: \"127.0.0.1:%d\"\n  no_advertise: true\n", nd.leaf)
			}
			if len(opts.Remotes) > 0 {
				var urls []string
				for _, u := range opts.Remotes {
					urls = append(urls, fmt.Sprintf("%q", u))
				}
				// Reconnect every second (the default, said here so a test can count on it).
				fmt.Fprintf(&b, "  reconnect: \"1s\"\n  remotes: [ { urls: [%s] } ]\n", strings.Join(urls, ", "))
			}
			b.WriteString("}\n")
		}
		nd.conf = filepath.Join(dir, nd.name+".conf")
		if err := os.WriteFile(nd.conf, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// waitListening waits until every server says it is ready to take clients (all its ports
// bound) and returns nil, or returns the first server found to have exited instead.
func (c *Cluster) waitListening(t testing.TB) *node {
	t.Helper()
	var exited *node
	testkit.EventuallyWithin(t, ReadyWithin, func() bool {
		for _, nd := range c.nodes {
			nd.mu.Lock()
			done := nd.done
			nd.mu.Unlock()
			select {
			case <-done:
				exited = nd
				return true
			default:
			}
			if !strings.Contains(nd.log.String(), "Server is ready") {
				return false
			}
		}
		return true
	}, "every nats-server listening")
	return exited
}

// killAll kills every server and waits for them.
func (c *Cluster) killAll() {
	for _, nd := range c.nodes {
		nd.signal(syscall.SIGKILL)
		nd.wait()
	}
}

// N is the number of servers.
func (c *Cluster) N() int { return len(c.nodes) }

// URL is server i's client URL.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].client) }

// URLs is every server's client URL, comma-separated: the seeds a weft process is given.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// LeafAddr is server i's leaf node listener, host:port (with Options.LeafNodes).
func (c *Cluster) LeafAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", c.nodes[i].leaf) }

// LeafAddrs is every server's leaf node listener.
func (c *Cluster) LeafAddrs() []string {
	addrs := make([]string, len(c.nodes))
	for i := range c.nodes {
		addrs[i] = c.LeafAddr(i)
	}
	return addrs
}

// Leafs is how many leaf node connections server i has now (its /leafz): a leaf node's
// connections to its hub, or a hub server's from leaf nodes.
func (c *Cluster) Leafs(i int) (int, error) {
	resp, err := c.hc.Get(fmt.Sprintf("http://127.0.0.1:%d/leafz", c.nodes[i].monitor))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var z struct {
		Leafs int `json:"leafnodes"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&z); err != nil {
		return 0, fmt.Errorf("natscluster: %s /leafz: %w", c.nodes[i].name, err)
	}
	return z.Leafs, nil
}

// Name is server i's server_name (what StreamInfo's cluster info calls it).
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Running reports whether server i's process runs.
func (c *Cluster) Running(i int) bool {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

// Start starts server i, which must not be running, on its ports and store.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		c.t.Fatalf("natscluster: %s is running", nd.name)
	}
	nd.life++
	fmt.Fprintf(&nd.log, "--- life %d ---\n", nd.life)
	cmd := exec.Command(c.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = &nd.log, &nd.log
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("natscluster: starting %s: %v", nd.name, err)
	}
	done := make(chan struct{})
	nd.cmd, nd.done = cmd, done
	go func() { // owned by the node: every stop and the cleanup wait for done
		err := cmd.Wait()
		fmt.Fprintf(&nd.log, "--- exited: %v ---\n", err)
		close(done)
	}()
}

// Kill kills server i with SIGKILL, as a crash would, and waits until it is gone.
func (c *Cluster) Kill(i int) {
	nd := c.nodes[i]
	nd.signal(syscall.SIGKILL)
	nd.wait()
}

// Stop stops server i gracefully (SIGTERM; killed if it takes longer than 30s) and waits.
func (c *Cluster) Stop(i int) { c.stop(c.nodes[i]) }

// StopAll stops every server at once, gracefully, and waits for all of them.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Go(func() { c.stop(nd) })
	}
	wg.Wait()
}

// StartAll starts every server that is not running.
func (c *Cluster) StartAll() {
	c.t.Helper()
	for i := range c.nodes {
		if !c.Running(i) {
			c.Start(i)
		}
	}
}

func (c *Cluster) stop(nd *node) {
	done := nd.signal(syscall.SIGTERM)
	if done == nil {
		return
	}
	t := time.NewTimer(stopWithin)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.t.Logf("natscluster: %s did not stop within %v of SIGTERM: killing it", nd.name, stopWithin)
		nd.signal(syscall.SIGKILL)
	}
	nd.wait()
}

// signal sends sig to the running process and returns its done channel (nil: not running).
func (nd *node) signal(sig syscall.Signal) chan struct{} {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return nil
	}
	_ = nd.cmd.Process.Signal(sig) // an error means it has exited already: wait sees to it
	return nd.done
}

// wait waits for the running process, if any, to exit, and marks the node stopped.
func (nd *node) wait() {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	if done == nil {
		return
	}
	<-done
	nd.mu.Lock()
	if nd.done == done {
		nd.cmd, nd.done = nil, nil
	}
	nd.mu.Unlock()
}

// WaitReady waits until every running server says it is healthy: its /healthz answers 200,
// which a JetStream server does once it knows the meta leader and every stream and consumer
// it holds a replica of is current.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	var last []string
	var asked time.Time
	testkit.EventuallyOr(t, ReadyWithin, func() bool {
		// Every failed health check is a warning in the server's log: ask every 100ms,
		// not at every poll.
		if time.Since(asked) < healthEvery {
			return false
		}
		asked = time.Now()
		last = last[:0]
		for i, nd := range c.nodes {
			if !c.Running(i) {
				continue
			}
			if ok, why := c.healthy(t, nd); !ok {
				last = append(last, nd.name+": "+why)
			}
		}
		return len(last) == 0
	}, "every running nats-server healthy", func() { t.Logf("not healthy: %v", last) })
}

func (c *Cluster) healthy(t testing.TB, nd *node) (bool, string) {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	select {
	case <-done:
		t.Fatalf("natscluster: %s exited on its own; its log:\n%s", nd.name, tail(nd.log.String(), 8<<10))
	default:
	}
	resp, err := c.hc.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.monitor))
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode == http.StatusOK, strings.TrimSpace(string(body))
}

// Conn is a plain NATS client of the cluster (every server a seed), closed at cleanup. It
// reconnects forever, so it outlives a server's (or every server's) restart.
func (c *Cluster) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.Name("natscluster-test"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// CreateStream creates a stream on the cluster, asking again each 5 s while no answer comes
// (within ReadyWithin). Just after the cluster is ready its servers may still replace
// duplicate routes, and a JetStream API reply sent over a route being closed is lost: seen in
// CI, the stream made in 120 ms and its reply never arriving in 60 s. Asking again with the
// same config is not an error; a refusal is.
func CreateStream(t testing.TB, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	deadline := time.Now().Add(ReadyWithin)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := js.CreateStream(ctx, cfg)
		cancel()
		if err == nil {
			return st
		}
		if !errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
			t.Fatalf("natscluster: creating stream %s: %v", cfg.Name, err)
		}
		t.Logf("natscluster: creating stream %s: no answer in 5s; asking again", cfg.Name)
	}
}

// WaitStreamCurrent waits until stream has a leader and replicas-1 followers, every one of
// them online and current: after a server came back, its replica has caught up.
func (c *Cluster) WaitStreamCurrent(t testing.TB, nc *nats.Conn, stream string, replicas int) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var why string
	testkit.EventuallyOr(t, ReadyWithin, func() bool {
		why = streamCurrent(js, stream, replicas)
		return why == ""
	}, "stream "+stream+" current on every replica", func() { t.Logf("stream %s: %s", stream, why) })
}

// streamCurrent says why stream is not current on all replicas ("" when it is).
func streamCurrent(js jetstream.JetStream, stream string, replicas int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return err.Error()
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err.Error()
	}
	cl := info.Cluster
	switch {
	case info.Config.Replicas != replicas:
		return fmt.Sprintf("%d replicas configured, want %d", info.Config.Replicas, replicas)
	case cl == nil || cl.Leader == "":
		return "no leader"
	case len(cl.Replicas) != replicas-1:
		return fmt.Sprintf("leader %s and %d followers, want %d", cl.Leader, len(cl.Replicas), replicas-1)
	}
	for _, r := range cl.Replicas {
		// Current, not a lag of 0: under live traffic a follower is always a few entries
		// behind the leader's latest.
		if !r.Current || r.Offline {
			return fmt.Sprintf("follower %s: current %v offline %v lag %d", r.Name, r.Current, r.Offline, r.Lag)
		}
	}
	return ""
}

// freePorts returns n distinct loopback ports that were free a moment ago. They are taken
// below the kernel's ephemeral range: a port from there (what :0 gives) may be handed to an
// outgoing connection while its server is stopped, and then the restart on the same port fails.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 1000 {
		lo, hi = 10000, 30000
	}
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("natscluster: no %d free ports in [%d, %d)", n, lo, hi)
		}
		p := lo + rand.N(hi-lo)
		if seen[p] {
			continue
		}
		seen[p] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	return ports
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux), or 32768.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}

// tail is the last max bytes of s, with the lines a server repeats while a peer is down (its
// route reconnect attempts, its health checks) left out and counted: they would push what
// explains a failure out of the tail.
func tail(s string, max int) string {
	var b strings.Builder
	skipped := 0
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.Contains(line, "Error trying to connect to route") || strings.Contains(line, "Healthcheck failed") {
			skipped++
			continue
		}
		b.WriteString(line)
	}
	out := b.String()
	if skipped > 0 {
		out += fmt.Sprintf("(%d route reconnect and health check lines left out)\n", skipped)
	}
	if len(out) <= max {
		return out
	}
	return "…" + out[len(out)-max:]
}
