package deploy

// The observability material against a running stack: a real Prometheus with the real rules
// scraping weft processes that real clients use (observability_test.go checks the files).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
	"github.com/weft-edge/weft/internal/testkit/testcert"
	"github.com/weft-edge/weft/internal/token"
	"go.yaml.in/yaml/v3"
)

// TestObservabilityStack runs the stack, drives traffic that moves every series a panel shows
// (a drain, refusals and a cut event included), and asks Prometheus every panel's query, the
// variables' label values, every series an alert rule reads, and every rule's health.
func TestObservabilityStack(t *testing.T) {
	prom := obsTool(t, "prometheus")
	st := obsStartStack(t)
	api := obsStartPrometheus(t, prom, st.ops)
	api.await(t, fmt.Sprintf("count(up == 1) == %d", len(st.ops["weft-edge"])+len(st.ops["weft-proxy"])+len(st.ops["weft-origin"])))
	// What the outbox rules stand on: of the origins on one database one leads, and the other
	// exports 0, not nothing.
	api.await(t, "sum(weft_origin_outbox_leader) == 1 and count(weft_origin_outbox_leader) == 2")
	st.drive(t, api)

	// Every panel's query, and every series an alert rule reads, must exist in a running stack.
	queries, rules := obsDashboard(t), obsRules(t)
	metric := regexp.MustCompile(`\b(up|(?:weft|go|process)_\w+)\b`)
	for _, r := range rules {
		for _, m := range slices.Compact(slices.Sorted(slices.Values(metric.FindAllString(r.Expr, -1)))) {
			queries = append(queries, obsQuery{fmt.Sprintf("alert %s's %s", r.Alert, m), "count(" + m + ")"})
		}
	}
	pending := map[obsQuery]string{}
	for _, q := range queries {
		pending[q] = "not asked yet"
	}
	testkit.EventuallyOr(t, obsWithin, func() bool {
		for q := range pending {
			if why := api.answers(q); why == "" {
				delete(pending, q)
			} else {
				pending[q] = why
			}
		}
		return len(pending) == 0
	}, "every query to return a series", func() {
		for q, why := range pending {
			t.Errorf("%s: %s\n  %s", q.where, why, q.expr)
		}
	})
	t.Logf("every one of %d queries returned a series", len(queries))

	health := map[string]string{}
	testkit.EventuallyOr(t, obsWithin, func() bool {
		health = api.ruleHealth()
		return !slices.ContainsFunc(rules, func(r obsRule) bool { return health[r.Alert] != "ok" })
	}, "every alert rule loaded and evaluated without error", func() {
		for _, r := range rules {
			t.Logf("%s: %q", r.Alert, health[r.Alert])
		}
	})

	// A healthy publisher (one leader, no failures) leaves every outbox rule inactive: not
	// even pending, which ALERTS would hold too. The other rules are left out: the drive's
	// refusals and drain are theirs to react to.
	body := obsGet(api.hc, api.base+"/api/v1/query?"+url.Values{"query": {`ALERTS{alertname=~"WeftOriginOutbox.+"}`}}.Encode())
	testkit.True(t, strings.Contains(body, `"result":[]`), "outbox alerts pending or firing on a healthy stack: %s", body)
}

// obsStack is the running stack's addresses and what its clients need.
type obsStack struct {
	origin, proxy string   // http://host:port (origin), https://host:port (proxy)
	edges, nodes  []string // http://host:port of each edge, and its node name
	ops           map[string][]string
	keys          *token.Keys
	hc            *http.Client // trusts the proxy's certificate
}

var (
	obsOriginLine = regexp.MustCompile(`(?m)^[ \t]+origin[ \t]+(http://[^/\s]+)`)
	obsNATSLine   = regexp.MustCompile(`(?m)^[ \t]+nats[ \t]+(\S+)`)
	obsOpsLine    = regexp.MustCompile(`(?m)^[ \t]+ops[ \t]+http://(\S+)`)
	obsEdgeLine   = regexp.MustCompile(`(?m)^weft edge \S+: (http://\S+)`)
	obsEdgeOps    = regexp.MustCompile(`(?m)^weft edge \S+ ops: http://(\S+)`)
	obsProxyLine  = regexp.MustCompile(`(?m)^weft proxy: (https://\S+)`)
	obsProxyOps   = regexp.MustCompile(`(?m)^weft proxy ops: http://(\S+)`)
)

// obsStartStack starts the reference origin (running NATS with JetStream), two origins on
// PostgreSQL on one database, two edges and a proxy serving TLS, as the weft binary, each with
// its operator listener on loopback. The edges' limits are set low enough that the test can
// reach them with a handful of requests: request quota 20, 5 connections at once per team,
// 4 KiB events.
func obsStartStack(t *testing.T) *obsStack {
	bin, dir := weftBin.Path(t), t.TempDir()
	secrets := filepath.Join(dir, "token-secrets")
	testkit.OK(t, os.WriteFile(secrets, []byte(obsSecret+"\n"), 0o600))
	keys, err := token.New([]byte(obsSecret))
	testkit.OK(t, err)
	st := &obsStack{ops: map[string][]string{}, keys: keys}

	_, got := obsStart(t, "origin", bin, []string{"origin", "--addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0",
		"--nats-store", filepath.Join(dir, "jetstream"), "--ops-addr", "127.0.0.1:0", "--size", "small", "--rate", "5",
		"--log-level", "warn"}, obsOriginLine, obsNATSLine, obsOpsLine)
	st.origin, st.ops["weft-origin"] = got[0], []string{got[2]}
	nats := got[1]
	// The origin on PostgreSQL exports what the reference origin does not (its outbox
	// publisher's series), and a deployment runs one or the other; both under job weft-origin
	// here, so that every panel and rule finds its series. Two replicas on one database, as
	// deploy/ runs them, migrated first as deploy/ does: one leads, one stands by. Their
	// database has no teams, so they publish nothing into the stream the edges follow.
	pg := pgtest.Start(t)
	dsn := pg.CreateDB(t, "weft_observability")
	ctx, cancel := context.WithTimeout(context.Background(), obsWithin)
	defer cancel()
	migrate := exec.CommandContext(ctx, bin, "origin", "migrate", "--postgres", dsn)
	migrate.Env = obsEnv()
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("weft origin migrate: %v\n%s", err, out)
	}
	for i := 1; i <= 2; i++ {
		_, got := obsStart(t, fmt.Sprintf("origin-pg-%d", i), bin, []string{"origin", "--postgres", dsn, "--nats", nats,
			"--addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0", "--log-level", "warn"}, obsOpsLine)
		st.ops["weft-origin"] = append(st.ops["weft-origin"], got[0])
	}
	for i := 1; i <= 2; i++ {
		node := fmt.Sprintf("edge-%d", i)
		_, got := obsStart(t, node, bin, []string{"edge", "--addr", "127.0.0.1:0", "--node", node, "--nats", nats,
			"--origin", st.origin, "--token-secret-file", secrets, "--ops-addr", "127.0.0.1:0", "--log-level", "warn",
			"--memory-budget", "1GiB", "--drain", "1s", "--move-spread", "1s", "--request-rate", "20", "--request-burst", "20",
			"--team-connect-rate", "1", "--team-connect-burst", "5", "--max-event-bytes", "4096"}, obsEdgeLine, obsEdgeOps)
		st.edges, st.nodes = append(st.edges, got[0]), append(st.nodes, node)
		st.ops["weft-edge"] = append(st.ops["weft-edge"], got[1])
	}
	ca := testcert.NewCA(t)
	cert, key := ca.Issue(t, "proxy", 30*24*time.Hour).Files(t)
	_, got = obsStart(t, "proxy", bin, []string{"proxy", "--addr", "127.0.0.1:0", "--nats", nats,
		"--token-secret-file", secrets, "--ops-addr", "127.0.0.1:0", "--log-level", "warn",
		"--tls-cert", cert, "--tls-key", key, "--connect-rate", "5", "--connect-burst", "30"}, obsProxyLine, obsProxyOps)
	st.proxy, st.ops["weft-proxy"] = got[0], []string{got[1]}

	pem, err := os.ReadFile(ca.File)
	testkit.OK(t, err)
	pool := x509.NewCertPool()
	testkit.True(t, pool.AppendCertsFromPEM(pem), "the test CA does not parse")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	st.hc = &http.Client{Transport: tr, Timeout: obsWithin}
	t.Cleanup(tr.CloseIdleConnections)
	testkit.EventuallyWithin(t, obsWithin, func() bool {
		return strings.Contains(obsGet(st.hc, "http://"+st.ops["weft-proxy"][0]+"/metrics"), "\nweft_proxy_ring_edges 2\n")
	}, "the proxy's ring to hold both edges")
	return st
}

// obsProc is a process the test started; the test's end stops it.
type obsProc struct {
	cmd            *exec.Cmd
	stdout, stderr testkit.SyncBuffer
	exited         chan struct{}
}

// obsStart runs bin args (without this process's WEFT_ variables), stops it when the test ends
// (SIGTERM, then SIGKILL), and waits until its output has matched each of want: it returns the
// first group of each.
func obsStart(t *testing.T, name, bin string, args []string, want ...*regexp.Regexp) (*obsProc, []string) {
	t.Helper()
	p := &obsProc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = obsEnv()
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(obsWithin):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not stop within %v of SIGTERM: killed", name, obsWithin)
		}
	})
	got := make([]string, len(want))
	testkit.EventuallyOr(t, obsWithin, func() bool {
		testkit.True(t, !p.done(), "%s exited before it was up:\n%s", name, p.stderr.String())
		for i, re := range want {
			m := re.FindStringSubmatch(p.stdout.String())
			if m == nil {
				return false
			}
			got[i] = m[1]
		}
		return true
	}, name+" to print its addresses", func() { t.Logf("%s printed:\n%s%s", name, p.stdout.String(), p.stderr.String()) })
	return p, got
}

// obsEnv is this process's environment without its WEFT_ variables, which would set the
// flags of the processes the test starts.
func obsEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WEFT_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *obsProc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// obsGet is the body of a GET, "" on any failure (callers poll).
func obsGet(hc *http.Client, u string) string {
	resp, err := hc.Get(u)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// drive uses the stack the way its panels need: clients through the proxy on both edges,
// requests (some refused by the quota, one for a method that does not exist), an autocomplete
// each, a message to each client's team (one over the edges' event bound), a burst of direct
// connections to each edge until its team rate refuses one, a resume, a drain of edge-1 whose
// clients move to edge-2, and bad tokens at the proxy until its connection rate refuses one.
func (st *obsStack) drive(t *testing.T, api *obsAPI) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*obsWithin)
	defer cancel()
	type obsClient struct {
		c          *client.Client
		team, user string
		msgs       atomic.Int64
	}
	var clients []*obsClient
	on := map[string]int{}
	for n := 0; len(clients) < 4 || len(on) < 2; n++ {
		testkit.True(t, n < 40, "%d teams and not both edges: %v", n, on)
		oc := &obsClient{team: fmt.Sprintf("T%08d", n), user: fmt.Sprintf("U%08d", n*100000)}
		c, err := client.Dial(ctx, client.Options{URL: st.proxy, Token: st.token(t, oc.team, oc.user), HTTPClient: st.hc})
		testkit.OK(t, err)
		oc.c = c
		t.Cleanup(func() { _ = c.Close() })
		go func() {
			for ev := range c.Events() {
				if ev.Type == client.EventMessage {
					oc.msgs.Add(1)
				}
			}
		}()
		clients = append(clients, oc)
		on[c.Hello().Node]++
	}
	// Requests in two rounds, Prometheus scraping between them: a histogram's series is born
	// with its first observation, and rate() sees only what comes after its first sample. The
	// first round has a client on each edge ask, the second the others. (Index builds, at
	// team loads, come again with the drain's pre-warming on edge-2.)
	first := map[string]bool{}
	for round := range 2 {
		for _, oc := range clients {
			node := oc.c.Hello().Node
			if round == 0 && first[node] || round == 1 && first[node+oc.team] {
				continue
			}
			first[node], first[node+oc.team] = true, true
			_, err := oc.c.UsersInfo(ctx, oc.user)
			testkit.OK(t, err)
			_, err = oc.c.Autocomplete(ctx, client.AutocompleteQuery{Query: "a"})
			testkit.OK(t, err)
			testkit.True(t, oc.c.Call(ctx, "no.such.method", nil, nil) != nil, "a method that does not exist answered")
		}
		var wg sync.WaitGroup
		for range 40 { // twice the quota at once: rate_limited answers, and a pause
			wg.Go(func() { _ = clients[0].c.Ping(ctx) })
		}
		wg.Wait()
		api.await(t, `count(weft_edge_request_seconds_count{method=~"autocomplete|users.info"}) >= 4`,
			`count(weft_edge_index_build_seconds_count{part="prefix"}) >= 2`) // on both edges
	}

	seqs := map[string]int64{}
	for i, oc := range clients {
		ch := slices.IndexFunc(oc.c.Boot().Channels, func(c client.Channel) bool { return !c.IsArchived })
		testkit.True(t, ch >= 0, "%s has no channel to post in", oc.user)
		text := "observability"
		if i == 0 {
			text = strings.Repeat("a long message ", 400) // 6 KB: over --max-event-bytes, sent cut
		}
		seqs[oc.team] = st.post(t, oc.team, map[string]any{"type": "message", "user": oc.user,
			"channel": oc.c.Boot().Channels[ch].ID, "text": text})
	}
	testkit.EventuallyWithin(t, obsWithin, func() bool {
		return !slices.ContainsFunc(clients, func(oc *obsClient) bool { return oc.msgs.Load() == 0 })
	}, "every client to get a message")

	// A team no client uses, dialled at each edge directly (with a routing header no proxy
	// signed) until the edge's team rate refuses it: the owner serves the first, the other
	// edge says goodbye moved (misrouted).
	spare := st.token(t, "T00000099", "U09900000")
	for _, e := range st.edges {
		for i := 0; st.dial(ctx, t, "ws"+strings.TrimPrefix(e, "http")+"/ws?token="+spare, nil) != http.StatusTooManyRequests; i++ {
			testkit.True(t, i < 50, "%s took 50 connections of one team at once: no team rate", e)
		}
	}
	// A resume from one event back: replayed from the edge's memory.
	oc, wss := clients[1], "wss"+strings.TrimPrefix(st.proxy, "https")+"/ws"
	testkit.Equal(t, st.dial(ctx, t, wss+"?"+url.Values{
		"token": {st.token(t, oc.team, oc.user)}, "since": {strconv.FormatInt(max(seqs[oc.team]-1, 0), 10)}}.Encode(), st.hc),
		http.StatusSwitchingProtocols, "a resume's handshake")

	// edge-1 drains (weft drain): its teams' next owner pre-warms them, its sessions move.
	out, err := exec.Command(weftBin.Path(t), "drain", "--ops-url", "http://"+st.ops["weft-edge"][0], "--timeout", "30s").CombinedOutput()
	testkit.True(t, err == nil && strings.HasPrefix(string(out), "drained in "), "weft drain: %v: %s", err, out)
	testkit.EventuallyWithin(t, obsWithin, func() bool {
		return !slices.ContainsFunc(clients, func(oc *obsClient) bool { return oc.c.Hello().Node == st.nodes[0] })
	}, "edge-1's clients to move to edge-2")

	// Bad tokens at the proxy: 401s until its connection rate answers 429.
	for i := 0; st.dial(ctx, t, wss+"?token=not-a-token", st.hc) != http.StatusTooManyRequests; i++ {
		testkit.True(t, i < 300, "the proxy took 300 connections at once: no connection rate")
	}
}

func (st *obsStack) token(t *testing.T, team, user string) string {
	tok, err := st.keys.Issue(team, user, time.Hour)
	testkit.OK(t, err)
	return tok
}

// post publishes an event through the reference origin's admin endpoint; it returns its seq.
func (st *obsStack) post(t *testing.T, team string, ev map[string]any) int64 {
	b, err := json.Marshal(ev)
	testkit.OK(t, err)
	resp, err := st.hc.Post(st.origin+"/origin/admin/teams/"+team+"/events", "application/json", bytes.NewReader(b))
	testkit.OK(t, err)
	defer resp.Body.Close()
	var reply struct {
		OK      bool   `json:"ok"`
		LastSeq int64  `json:"last_seq"`
		Message string `json:"message"`
	}
	testkit.OK(t, json.NewDecoder(resp.Body).Decode(&reply))
	testkit.True(t, reply.OK, "posting to %s: %s %s", team, resp.Status, reply.Message)
	return reply.LastSeq
}

// dial opens a WebSocket at u, reads its first frame (hello or goodbye) and closes it; it
// returns the handshake's status.
func (st *obsStack) dial(ctx context.Context, t *testing.T, u string, hc *http.Client) int {
	ctx, cancel := context.WithTimeout(ctx, obsWithin)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"weft.v1"},
		HTTPHeader: http.Header{"Weft-Excluded": {"edge-0"}}})
	if err != nil {
		testkit.True(t, resp != nil, "dialling %s: %v", u, err)
		return resp.StatusCode
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatalf("the first frame from %s: %v", u, err)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	return resp.StatusCode
}

// obsAPI is a Prometheus server's HTTP API.
type obsAPI struct {
	base string
	hc   *http.Client
}

// obsStartPrometheus runs Prometheus on deploy's prometheus.yml with the jobs' targets replaced
// by the stack's operator listeners, a scrape and an evaluation every second, and alerts.yml.
func obsStartPrometheus(t *testing.T, bin string, ops map[string][]string) *obsAPI {
	dir := t.TempDir()
	var cfg map[string]any
	obsYAML(t, obsPromConfig, &cfg)
	alerts, err := filepath.Abs(obsAlerts)
	testkit.OK(t, err)
	cfg["global"] = map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []string{alerts}
	jobs, _ := cfg["scrape_configs"].([]any)
	testkit.Equal(t, len(jobs), len(ops), obsPromConfig+"'s jobs")
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		targets, ok := ops[fmt.Sprint(job["job_name"])]
		testkit.True(t, ok, "%s: job %v is not one of this test's %v", obsPromConfig, job["job_name"], ops)
		job["static_configs"] = []any{map[string]any{"targets": targets}}
	}
	b, err := yaml.Marshal(cfg)
	testkit.OK(t, err)
	config := filepath.Join(dir, "prometheus.yml")
	testkit.OK(t, os.WriteFile(config, b, 0o600))
	hc := &http.Client{Timeout: obsWithin}
	for attempt := 1; ; attempt++ {
		// A free port, taken by another between the look and Prometheus' start: try another.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		testkit.OK(t, err)
		addr := ln.Addr().String()
		ln.Close()
		p, _ := obsStart(t, "prometheus", bin, []string{"--config.file=" + config, "--web.listen-address=" + addr,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"+strconv.Itoa(attempt)), "--log.level=warn"})
		api := &obsAPI{base: "http://" + addr, hc: hc}
		testkit.EventuallyWithin(t, obsWithin, func() bool { return p.done() || obsGet(hc, api.base+"/-/ready") != "" },
			"Prometheus to be ready")
		if !p.done() {
			return api
		}
		testkit.True(t, attempt < 3, "prometheus exited:\n%s", p.stderr.String())
	}
}

// answers says why q's answer is not yet what a panel needs ("" when it is): a query must
// return at least one series with a value (not NaN), a variable at least one label value.
func (a *obsAPI) answers(q obsQuery) string {
	u := a.base + "/api/v1/query?" + url.Values{"query": {q.expr}}.Encode()
	if sel, label, ok := strings.Cut(q.expr, "\x00"); ok {
		u = a.base + "/api/v1/label/" + label + "/values?" + url.Values{"match[]": {sel}}.Encode()
	}
	var r struct {
		Status, Error string
		Data          json.RawMessage
	}
	var vector struct {
		Result []struct{ Value [2]any }
	}
	body := obsGet(a.hc, u)
	switch {
	case json.Unmarshal([]byte(body), &r) != nil || r.Status != "success":
		return fmt.Sprintf("no answer (%q): %s", r.Error, body)
	case bytes.HasPrefix(r.Data, []byte("[")): // label values
		if string(r.Data) == "[]" {
			return "no label values"
		}
		return ""
	case json.Unmarshal(r.Data, &vector) != nil:
		return fmt.Sprintf("not a vector: %s", r.Data)
	}
	for _, s := range vector.Result {
		if v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64); err == nil && !math.IsNaN(v) {
			return ""
		}
	}
	return fmt.Sprintf("no series with a value: %s", r.Data)
}

// await waits until each of exprs returns a series.
func (a *obsAPI) await(t *testing.T, exprs ...string) {
	for _, e := range exprs {
		testkit.EventuallyWithin(t, obsWithin, func() bool {
			return strings.Contains(obsGet(a.hc, a.base+"/api/v1/query?"+url.Values{"query": {e}}.Encode()), `"metric"`)
		}, "Prometheus to have "+e)
	}
}

// ruleHealth is each alert rule's health as Prometheus reports it: ok, unknown before its
// first evaluation, or err and the error.
func (a *obsAPI) ruleHealth() map[string]string {
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct{ Name, Health, LastError string }
			}
		}
	}
	health := map[string]string{}
	_ = json.Unmarshal([]byte(obsGet(a.hc, a.base+"/api/v1/rules?type=alert")), &r)
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			health[rule.Name] = strings.TrimSuffix(rule.Health+": "+rule.LastError, ": ")
		}
	}
	return health
}
