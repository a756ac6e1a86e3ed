package loadtest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/centrifugal/centrifuge"

	"github.com/weft-edge/weft/internal/token"
)

// The bigteam scenario's peer: a server on github.com/centrifugal/centrifuge, the Go library
// of Centrifugo, with the library's defaults, serving what an edge serves in that scenario. A
// client connects with a weft token (the same HMAC check, internal/token), is subscribed on
// the server side to one channel per team, "team:<ID>", gets every publication to it, and may
// call the RPC users.info, answered from the team's users held in memory as weft holds them.
// Publications come in over HTTP straight into the node (its in-memory broker): no origin
// and no NATS on the way, which weft's events cross.
//
// It runs as `weft-loadtest centrifuge-server` (CentrifugeCommand), a process of its own so
// that its memory and CPU are measured alone, and prints "centrifuge http://addr" once it
// listens. Its HTTP endpoints:
//
//	GET  /connection/websocket          the centrifuge client protocol (JSON)
//	POST /publish?team=T&count=N        the body published N times to team:T, one after another
//	GET  /stats                         {"clients": n}

// CentrifugeCommand is the argument that makes weft-loadtest the centrifuge server.
const CentrifugeCommand = "centrifuge-server"

// centrifugeConfig is the server's plan, read as JSON from its standard input.
type centrifugeConfig struct {
	Secret string `json:"secret"`
	// Users are the teams' user objects (docs/protocol.md), by team and user ID.
	Users map[string]map[string]json.RawMessage `json:"users"`
}

// RunCentrifugeServer runs the peer server until ctx ends: its plan from in, its address line
// to out.
func RunCentrifugeServer(ctx context.Context, in io.Reader, out io.Writer) error {
	var cfg centrifugeConfig
	if err := json.NewDecoder(bufio.NewReader(in)).Decode(&cfg); err != nil {
		return fmt.Errorf("centrifuge server: reading the plan: %w", err)
	}
	keys, err := token.New([]byte(cfg.Secret))
	if err != nil {
		return fmt.Errorf("centrifuge server: %w", err)
	}
	node, err := centrifuge.New(centrifuge.Config{})
	if err != nil {
		return err
	}
	node.OnConnecting(func(_ context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		c, err := keys.Verify(e.Token)
		if err != nil {
			return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
		}
		return centrifuge.ConnectReply{
			Credentials:   &centrifuge.Credentials{UserID: c.User, Info: []byte(strconv.Quote(c.Team))},
			Subscriptions: map[string]centrifuge.SubscribeOptions{"team:" + c.Team: {}},
		}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		team, _ := strconv.Unquote(string(c.Info()))
		users := cfg.Users[team]
		c.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
			if e.Method != "users.info" {
				cb(centrifuge.RPCReply{}, centrifuge.ErrorMethodNotFound)
				return
			}
			var p struct {
				Users []string `json:"users"`
			}
			if json.Unmarshal(e.Data, &p) != nil || len(p.Users) == 0 || len(p.Users) > 100 {
				cb(centrifuge.RPCReply{}, centrifuge.ErrorBadRequest)
				return
			}
			cb(centrifuge.RPCReply{Data: usersInfo(users, p.Users)}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return err
	}
	defer func() { _ = node.Shutdown(context.Background()) }()

	mux := http.NewServeMux()
	// Origin checks are for browsers; these clients send none.
	mux.Handle("GET /connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		CheckOrigin: func(*http.Request) bool { return true }}))
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		team := r.URL.Query().Get("team")
		n, err := strconv.Atoi(cmp.Or(r.URL.Query().Get("count"), "1"))
		data, rerr := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if team == "" || err != nil || n < 1 || rerr != nil || !json.Valid(data) {
			http.Error(w, "want ?team=T&count=N and a JSON body", http.StatusBadRequest)
			return
		}
		for range n {
			if _, err := node.Publish("team:"+team, data); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"clients":%d}`, node.Hub().NumClients())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "centrifuge http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return err
	}
}

// usersInfo answers users.info as the edge does: {"users":[…],"missing":[…]}.
func usersInfo(users map[string]json.RawMessage, ids []string) []byte {
	b := []byte(`{"users":[`)
	var missing []string
	n := 0
	for _, id := range ids {
		u, ok := users[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, u...)
		n++
	}
	b = append(b, `],"missing":`...)
	m, _ := json.Marshal(missing)
	b = append(b, m...)
	return append(b, '}')
}

// centrifugeServer is the peer server as its scenario drives it: a child process.
type centrifugeServer struct {
	*child
	url string // http://addr
	hc  *http.Client
}

// startCentrifuge starts bin as the centrifuge server, hands it cfg, and waits for its address.
func startCentrifuge(ctx context.Context, bin string, cfg centrifugeConfig, stderr io.Writer) (*centrifugeServer, error) {
	cmd, err := nicedCommand(0, false, bin, CentrifugeCommand)
	if err != nil {
		return nil, err
	}
	plan, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = bytes.NewReader(plan)
	addr := make(chan string, 1)
	c, err := startChild("centrifuge server", cmd, stderr, func(stdout io.Reader) {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "centrifuge "); ok {
				addr <- u
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	s := &centrifugeServer{child: c, hc: &http.Client{Transport: newTransport()}}
	select {
	case s.url = <-addr:
		return s, nil
	case <-c.Exited():
		return nil, fmt.Errorf("loadtest: the centrifuge server exited before listening: %v", c.waitErr)
	case <-ctx.Done():
		s.close()
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		s.close()
		return nil, errors.New("loadtest: the centrifuge server did not listen within a minute")
	}
}

func (s *centrifugeServer) close() {
	_ = s.terminate(10 * time.Second)
	s.hc.CloseIdleConnections()
}

// wsURL is the centrifuge client endpoint.
func (s *centrifugeServer) wsURL() string {
	return "ws" + strings.TrimPrefix(s.url, "http") + "/connection/websocket"
}

// publish publishes data n times to team's channel.
func (s *centrifugeServer) publish(ctx context.Context, team string, data []byte, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		fmt.Sprintf("%s/publish?team=%s&count=%d", s.url, team, n), bytes.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("loadtest: centrifuge publish: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// clients is how many client connections the server holds.
func (s *centrifugeServer) clients(ctx context.Context) (int, error) {
	var st struct {
		Clients int `json:"clients"`
	}
	err := originJSON(ctx, s.hc, http.MethodGet, s.url+"/stats", "", nil, &st)
	return st.Clients, err
}
