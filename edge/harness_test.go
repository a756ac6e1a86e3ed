package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/protocol"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

const testSecret = "edge-test-secret-0123456789"

// harness is a whole edge node, real and in-process: embedded NATS with JetStream and the
// reference origin behind an httptest server (every request counted), from testkit/backend,
// and the edge Server behind its own httptest server.
type harness struct {
	t      *testing.T
	nats   *backend.Restartable // set with harnessOpts.outages
	bus    *pubsub.Bus
	origin *reference.Server
	orig   *backend.Origin // the origin's HTTP side: its request count
	edge   *Server
	http   *httptest.Server
	ops    *httptest.Server // the operator's endpoints (OpsHandler)
	keys   *token.Keys
	client *http.Client // for /api and the handshakes; its idle connections closed at cleanup
	team   string       // the first team of the world
	other  string       // another team
}

type harnessOpts struct {
	stream  pubsub.StreamConfig
	pending int // pubsub.Config.SubPendingMsgs; 0 = its default
	edge    func(*Config)
	guard   origin.Guard // wraps every origin call (the breaker)
	// outages puts NATS on a fixed port a test can stop and start (h.nats), with short
	// JetStream timeouts, and makes the origin republish what it could not publish.
	outages bool
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t}
	emb, bcfg := backend.NATS(t), pubsub.Config{Stream: o.stream,
		SubPendingMsgs: o.pending, GapCheckInterval: 200 * time.Millisecond}
	var flush time.Duration
	if o.outages {
		h.nats = backend.RestartableNATS(t)
		emb, bcfg.RequestTimeout, flush = h.nats.Embedded(), 300*time.Millisecond, 50*time.Millisecond
	}
	h.bus = backend.Bus(t, emb, bcfg)
	h.orig = backend.NewOrigin(t, backend.OriginConfig{World: backend.World(t, 7, "tiny"), Publisher: h.bus,
		Client: origin.ClientConfig{Guard: o.guard}, FlushEvery: flush})
	h.origin = h.orig.Server
	oc := h.orig.Client
	var err error
	h.keys, err = token.New([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	// Connection quotas off unless a test sets them: many tests dial dozens of sessions at once.
	cfg := Config{Cache: cache.Config{Origin: oc, Feed: h.bus}, Replay: h.bus, Tokens: h.keys, Node: "edge-test",
		ConnectRate: -1, TeamConnectRate: -1}
	if o.edge != nil {
		o.edge(&cfg)
	}
	h.edge, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.edge.Start(); err != nil {
		t.Fatal(err)
	}
	h.http = httptest.NewServer(h.edge)
	h.ops = httptest.NewServer(h.edge.OpsHandler())
	h.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.edge.Shutdown(ctx); err != nil {
			t.Errorf("edge shutdown: %v", err)
		}
		h.http.Close()
		h.ops.Close()
		h.client.CloseIdleConnections()
	})
	ids := h.origin.TeamIDs()
	h.team, h.other = ids[0], ids[1]
	return h
}

// user returns the ID of user i of team.
func (h *harness) user(team string, i int) string { return h.origin.Users(team)[i].ID }

// activeUsers are the IDs of team's users not deleted, in the origin's order.
func (h *harness) activeUsers(team string) []string {
	var ids []string
	for _, u := range h.origin.Users(team) {
		if !u.Deleted {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

func (h *harness) token(team, user string) string {
	tok, err := h.keys.Issue(team, user, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(h.http.URL, "http") + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dialRaw opens a WebSocket with tok as the bearer token (none when ""); it reads nothing.
func (h *harness) dialRaw(tok, query string) (*websocket.Conn, *http.Response, error) {
	hdr := http.Header{}
	if tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, h.wsURL(query), &websocket.DialOptions{
		HTTPClient: h.client, HTTPHeader: hdr, Subprotocols: []string{protocol.Subprotocol}})
}

// dialStuck connects and reads the hello, then never reads again.
func (h *harness) dialStuck(team, user string) (*websocket.Conn, protocol.Hello) {
	h.t.Helper()
	conn, _, err := h.dialRaw(h.token(team, user), "")
	if err != nil {
		h.t.Fatalf("dial %s/%s: %v", team, user, err)
	}
	h.t.Cleanup(func() { conn.CloseNow() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := conn.Read(ctx)
	if err != nil {
		h.t.Fatalf("reading hello: %v", err)
	}
	var hello protocol.Hello
	if err := json.Unmarshal(b, &hello); err != nil || hello.Type != "hello" {
		h.t.Fatalf("first frame is not a hello: %s", b)
	}
	return conn, hello
}

// dial connects as user of team (query: e.g. "since=12"), checks the hello and starts a reader.
func (h *harness) dial(team, user, query string) *wsClient {
	h.t.Helper()
	c, err := h.tryDial(team, user, query)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) tryDial(team, user, query string) (*wsClient, error) {
	conn, _, err := h.dialRaw(h.token(team, user), query)
	if err != nil {
		return nil, fmt.Errorf("dial %s/%s: %w", team, user, err)
	}
	c := &wsClient{t: h.t, conn: conn, done: make(chan struct{}), user: user}
	// Generous: under -race with every package testing side by side on 2 cores, a resume's
	// replay from JetStream can take seconds before the hello goes out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	typ, b, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("reading hello: %w", err)
	}
	if typ != websocket.MessageText || json.Unmarshal(b, &c.hello) != nil || c.hello.Type != "hello" ||
		c.hello.Protocol != protocol.Subprotocol || c.hello.Team != team || c.hello.User != user || c.hello.Session == "" {
		conn.CloseNow()
		return nil, fmt.Errorf("bad hello %s", b)
	}
	// The cleanup waits for the reader, so it is registered only once there is one.
	h.t.Cleanup(c.close)
	go c.readLoop()
	return c, nil
}

// frame is any server frame after the hello.
type frame struct {
	Type             string          `json:"type"`
	ID               *int64          `json:"id"`
	OK               bool            `json:"ok"`
	Result           json.RawMessage `json:"result"`
	Error            *protocol.Error `json:"error"`
	Seq              int64           `json:"seq"`
	Event            *origin.Event   `json:"event"`
	Reason           string          `json:"reason"`
	ReconnectAfterMS int64           `json:"reconnect_after_ms"`
	Annotations      *struct {
		Users    map[string]origin.User    `json:"users"`
		Channels map[string]origin.Channel `json:"channels"`
	} `json:"annotations"`
	raw []byte
}

// wsClient is a test client: a goroutine reads every frame into frames until the connection
// ends (err then says how).
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	user   string
	hello  protocol.Hello
	nextID atomic.Int64
	done   chan struct{}

	mu     sync.Mutex // guards frames and err
	frames []frame
	err    error
}

func (c *wsClient) readLoop() {
	defer close(c.done)
	for {
		typ, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var f frame
		if typ != websocket.MessageText || json.Unmarshal(b, &f) != nil {
			f = frame{Type: "unparsable"}
		}
		f.raw = b
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
	}
}

func (c *wsClient) close() {
	c.conn.CloseNow()
	<-c.done
}

// ended reports whether the connection is over, and why.
func (c *wsClient) ended() (bool, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return true, c.err
	default:
		return false, nil
	}
}

func (c *wsClient) all() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.frames)
}

// events returns the event frames received so far.
func (c *wsClient) events() []frame {
	var out []frame
	for _, f := range c.all() {
		if f.Type == "event" {
			out = append(out, f)
		}
	}
	return out
}

func (c *wsClient) seqs() []int64 {
	var out []int64
	for _, f := range c.events() {
		out = append(out, f.Seq)
	}
	return out
}

func (c *wsClient) hasSeq(seq int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.frames) - 1; i >= 0; i-- {
		if c.frames[i].Type == "event" && c.frames[i].Seq == seq {
			return true
		}
	}
	return false
}

func (c *wsClient) send(data []byte) {
	c.t.Helper()
	c.sendType(websocket.MessageText, data)
}

func (c *wsClient) sendType(typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, typ, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// waitFrame waits for a frame that matches and returns the first one.
func (c *wsClient) waitFrame(what string, match func(frame) bool) frame {
	c.t.Helper()
	var got frame
	testkit.Eventually(c.t, func() bool {
		for _, f := range c.all() {
			if match(f) {
				got = f
				return true
			}
		}
		return false
	}, what)
	return got
}

// request sends one request with a fresh id and waits for its reply.
func (c *wsClient) request(method string, params any) frame {
	c.t.Helper()
	id := c.nextID.Add(1)
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	b, _ := json.Marshal(msg)
	c.send(b)
	return c.reply(id)
}

func (c *wsClient) reply(id int64) frame {
	c.t.Helper()
	return c.waitFrame(fmt.Sprintf("reply %d", id), func(f frame) bool {
		return f.Type == "reply" && f.ID != nil && *f.ID == id
	})
}

// call runs a method over the WebSocket and decodes its result into out; it fails the test on
// an error reply.
func (c *wsClient) call(method string, params, out any) {
	c.t.Helper()
	f := c.request(method, params)
	if !f.OK || f.Error != nil {
		c.t.Fatalf("%s: error reply %s", method, f.raw)
	}
	if err := json.Unmarshal(f.Result, out); err != nil {
		c.t.Fatalf("%s: decoding %s: %v", method, f.Result, err)
	}
}

// api posts params to /api/method with tok and returns the status and the decoded body.
func (h *harness) api(tok, method string, params any) (int, map[string]json.RawMessage) {
	h.t.Helper()
	var body []byte
	if params != nil {
		body, _ = json.Marshal(params)
	}
	return h.apiRaw(tok, method, body)
}

// apiRaw posts body as is.
func (h *harness) apiRaw(tok, method string, body []byte) (int, map[string]json.RawMessage) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/api/"+url.PathEscape(method), bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("/api/%s: body %q is not a JSON object", method, raw)
	}
	return resp.StatusCode, out
}

// apiCall runs a method over /api and decodes the answer (without ok) into out.
func (h *harness) apiCall(tok, method string, params, out any) {
	h.t.Helper()
	status, body := h.api(tok, method, params)
	if status != http.StatusOK || string(body["ok"]) != "true" {
		h.t.Fatalf("/api/%s: status %d, body %v", method, status, body)
	}
	delete(body, "ok")
	b, _ := json.Marshal(body)
	if err := json.Unmarshal(b, out); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	return h.getAt(h.http.URL, path)
}

// opsGet GETs path from the operator's endpoints.
func (h *harness) opsGet(path string) (int, string) {
	h.t.Helper()
	return h.getAt(h.ops.URL, path)
}

func (h *harness) getAt(base, path string) (int, string) {
	h.t.Helper()
	resp, err := h.client.Get(base + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one unlabelled series from /metrics.
func (h *harness) metric(name string) float64 {
	h.t.Helper()
	_, body := h.opsGet("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// applied waits until the edge's store of team reflects seq.
func (h *harness) applied(team string, seq int64) {
	h.t.Helper()
	testkit.Eventually(h.t, func() bool {
		t := h.edge.Teams().Lookup(team)
		if t == nil || t.Store().Seq() < seq {
			return false
		}
		// And fanned out: a session registering from now on starts after seq.
		hb, ok := h.edge.hubs.Load(team)
		if !ok {
			return true
		}
		hb.(*hub).mu.Lock()
		defer hb.(*hub).mu.Unlock()
		return hb.(*hub).lastSeq >= seq
	}, fmt.Sprintf("team %s at seq %d", team, seq))
}

// must fails the test on a mutation error and returns the event.
func (h *harness) must(ev *origin.Event, err error) *origin.Event {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}
