package loadtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/weft-edge/weft/internal/sleep"
)

// FrontsConfig configures RunFronts: weft's proxy beside nginx with `hash $arg_team
// consistent`, each in front of 3 edges, measured by the same clients in the same run.
type FrontsConfig struct {
	Bin       string // the weft binary; required
	WorkerBin string // weft-loadtest, for the storm's client worker (StormConfig.WorkerBin) and the relay; required
	// Fronts to measure, in order; default weft, nginx, then the plain relay (FrontRelay).
	Fronts []string
	Size   string // the origin's world; default "small"
	// Setups is the connection setups through each front, and as many straight to the edge
	// behind it, interleaved; default 1,000. Requests is the users.info round trips each way;
	// default 2,000. Both are paced (SetupRate, RequestRate pairs a second) well under the
	// edges' and the proxy's admission rates, so that they measure the path, not a queue.
	Setups, Requests       int
	SetupRate, RequestRate float64 // defaults 200 and 500
	// Idle is the connections held open through each front to read its RSS per proxied
	// connection; default 2,000.
	Idle int
	// StormClients is the clients of the storm (3 edges behind one front, the busiest edge
	// SIGKILLed): about a third of them lose their edge. Default 3,000; negative: no storm.
	StormClients int
	// ProxyArgs are extra flags for weft's proxies (to measure alternatives).
	ProxyArgs []string
	// StormObserve bounds the wait for the storm's clients to be back; default 60s.
	StormObserve time.Duration
	Stderr       io.Writer
	Log          func(format string, args ...any)
}

// FrontFigures is one front's figures in one run.
type FrontFigures struct {
	Front string `json:"front"`
	// Setup is dial to hello through the front (Via) and straight to the edge it chose
	// (Direct); AddedSetup is the difference of their medians.
	SetupDirect   Dist    `json:"setup_direct"`
	SetupVia      Dist    `json:"setup_via"`
	AddedSetupP50 float64 `json:"added_setup_p50_ms"`
	// RTT is a users.info round trip on an open session, the same way.
	RTTDirect   Dist    `json:"rtt_direct"`
	RTTVia      Dist    `json:"rtt_via"`
	AddedRTTP50 float64 `json:"added_rtt_p50_ms"`
	// RSSPerConn is the front's RSS growth over Idle connections, per connection (nginx: its
	// master and workers together).
	Idle       int     `json:"idle"`
	RSSPerConn float64 `json:"rss_per_conn_bytes"`
	// Storm is the reconnect storm behind this front.
	Storm *StormFigures `json:"storm,omitempty"`
}

// RunFronts runs every front once and returns their figures, in cfg.Fronts' order.
func RunFronts(ctx context.Context, cfg FrontsConfig) ([]*FrontFigures, error) {
	if cfg.Bin == "" || cfg.WorkerBin == "" {
		return nil, errors.New("loadtest: FrontsConfig.Bin and WorkerBin are required")
	}
	if len(cfg.Fronts) == 0 {
		cfg.Fronts = []string{FrontWeft, FrontNginx, FrontRelay}
	}
	cfg.Size = cmp.Or(cfg.Size, "small")
	cfg.Setups = cmp.Or(cfg.Setups, 1000)
	cfg.Requests = cmp.Or(cfg.Requests, 2000)
	cfg.SetupRate = cmp.Or(cfg.SetupRate, 200)
	cfg.RequestRate = cmp.Or(cfg.RequestRate, 500)
	cfg.Idle = cmp.Or(cfg.Idle, 2000)
	cfg.StormClients = cmp.Or(cfg.StormClients, 3000)
	cfg.StormObserve = cmp.Or(cfg.StormObserve, 60*time.Second)
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	var out []*FrontFigures
	for _, front := range cfg.Fronts {
		f, err := runFront(ctx, cfg, front)
		if err != nil {
			return nil, fmt.Errorf("front %s: %w", front, err)
		}
		// The relay sends everything to one edge: killing it leaves its clients nowhere to go.
		if cfg.StormClients > 0 && front != FrontRelay {
			cfg.Log("%s: the storm, %d clients", front, cfg.StormClients)
			f.Storm, err = RunStorm(ctx, StormConfig{Bin: cfg.Bin, WorkerBin: cfg.WorkerBin, Front: front,
				Clients: cfg.StormClients, Workers: 1, Edges: 3, Proxies: 1, Size: cfg.Size, Protected: true,
				Steady: 5 * time.Second, Observe: cfg.StormObserve, Probers: 20, ProbeEvery: 50 * time.Millisecond, ProxyArgs: cfg.ProxyArgs, Stderr: cfg.Stderr, Log: cfg.Log})
			if err != nil {
				return nil, fmt.Errorf("front %s: storm: %w", front, err)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// frontPlan is who connects: a session per (team, user), with its token.
type frontSession struct {
	team, user, tok string
}

// runFront measures setups, round trips and RSS through one front over a fresh cluster.
func runFront(ctx context.Context, cfg FrontsConfig, front string) (*FrontFigures, error) {
	cl, err := StartCluster(ctx, ClusterConfig{Bin: cfg.Bin, RelayBin: cfg.WorkerBin, Edges: 3, Proxies: 1, Size: cfg.Size, Front: front,
		ProxyArgs: cfg.ProxyArgs, Stderr: cfg.Stderr})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	fp := cl.Proxies[0]
	sessions, err := frontSessions(ctx, cl, cfg.Size)
	if err != nil {
		return nil, err
	}
	// Which edge the front sends each team to: the direct path goes there too.
	edgeURL := map[string]string{}
	for _, e := range cl.Edges {
		edgeURL[e.Name] = "ws" + strings.TrimPrefix(e.URL, "http") + "/ws"
	}
	owner := map[string]string{}
	for _, s := range sessions {
		if _, ok := owner[s.team]; ok {
			continue
		}
		c, err := dialCheapWithin(ctx, cl.WSURL(fp, s.team), s.tok)
		if err != nil {
			return nil, err
		}
		c.close()
		u, ok := edgeURL[c.node]
		if !ok {
			return nil, fmt.Errorf("loadtest: hello names node %q, not one of the cluster's edges", c.node)
		}
		owner[s.team] = u
	}
	f := &FrontFigures{Front: front, Idle: cfg.Idle}
	cfg.Log("%s: %d setups each way", front, cfg.Setups)
	direct, via := NewHist(), NewHist()
	err = pacedPairs(ctx, cfg.Setups, cfg.SetupRate, func(i int) error {
		s := sessions[i%len(sessions)]
		paths := [2]struct {
			url string
			h   *Hist
		}{{owner[s.team], direct}, {cl.WSURL(fp, s.team), via}}
		for k := range 2 {
			p := paths[(i+k)%2] // alternate which goes first
			t0 := time.Now()
			c, err := dialCheapWithin(ctx, p.url, s.tok)
			if err != nil {
				return err
			}
			p.h.Record(time.Since(t0))
			c.close()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.SetupDirect, f.SetupVia = direct.Dist(), via.Dist()
	f.AddedSetupP50 = f.SetupVia.P50 - f.SetupDirect.P50

	cfg.Log("%s: %d round trips each way", front, cfg.Requests)
	if err := frontRTT(ctx, cl, cfg, f, sessions, owner); err != nil {
		return nil, err
	}

	cfg.Log("%s: %d idle connections", front, cfg.Idle)
	if f.RSSPerConn, err = frontRSS(ctx, cl, cfg, sessions); err != nil {
		return nil, err
	}
	return f, nil
}

// frontSessions is a session for every user of every team of the world, team after team.
func frontSessions(ctx context.Context, cl *Cluster, size string) ([]frontSession, error) {
	teams, err := worldTeams(size)
	if err != nil {
		return nil, err
	}
	var teamUsers [][]frontSession
	for _, team := range teams {
		users, err := TeamUsers(ctx, cl.HTTP, cl.Origin.URL, OriginToken, team)
		if err != nil {
			return nil, err
		}
		var ss []frontSession
		for _, u := range users {
			if u.Deleted {
				continue
			}
			tok, err := cl.Token(team, u.ID)
			if err != nil {
				return nil, err
			}
			ss = append(ss, frontSession{team: team, user: u.ID, tok: tok})
		}
		teamUsers = append(teamUsers, ss)
	}
	// Interleaved across teams, so that consecutive sessions are of different teams and no
	// team's own connection rate is approached.
	var out []frontSession
	for i := 0; ; i++ {
		added := false
		for _, ss := range teamUsers {
			if i < len(ss) {
				out = append(out, ss[i])
				added = true
			}
		}
		if !added {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("loadtest: the %s world has no users", size)
	}
	return out, nil
}

// pacedPairs calls fn(i) for i in [0, n), rate times a second, one after the other.
func pacedPairs(ctx context.Context, n int, rate float64, fn func(i int) error) error {
	every := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for i := range n {
		if err := sleep.For(ctx, time.Until(next)); err != nil {
			return err
		}
		next = next.Add(every)
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// dialCheapWithin opens a weft session within 30s.
func dialCheapWithin(ctx context.Context, url, tok string) (*cheapConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return dialCheap(ctx, protoWeft, url, tok)
}

// frontRTTSessions is the sessions the round trips spread over, each way: at the default
// 500 pairs a second, 25 requests a second each, a quarter of an edge's per-session rate.
const frontRTTSessions = 20

// frontRTT measures users.info round trips through the front and straight to the edge, on
// sessions of the same teams, interleaved.
func frontRTT(ctx context.Context, cl *Cluster, cfg FrontsConfig, f *FrontFigures, sessions []frontSession,
	owner map[string]string) error {
	type pair struct {
		s           frontSession
		direct, via *cheapConn
	}
	var pairs []pair
	defer func() {
		for _, p := range pairs {
			p.direct.close()
			p.via.close()
		}
	}()
	for i := range frontRTTSessions {
		s := sessions[i%len(sessions)]
		d, err := dialCheapWithin(ctx, owner[s.team], s.tok)
		if err != nil {
			return err
		}
		v, err := dialCheapWithin(ctx, cl.WSURL(cl.Proxies[0], s.team), s.tok)
		if err != nil {
			d.close()
			return err
		}
		pairs = append(pairs, pair{s, d, v})
	}
	direct, via := NewHist(), NewHist()
	err := pacedPairs(ctx, cfg.Requests, cfg.RequestRate, func(i int) error {
		p := pairs[i%len(pairs)]
		conns := [2]*cheapConn{p.direct, p.via}
		hists := [2]*Hist{direct, via}
		for k := range 2 {
			j := (i + k) % 2
			rtt, err := conns[j].roundTrip(p.s.user)
			if err != nil {
				return err
			}
			hists[j].Record(rtt)
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.RTTDirect, f.RTTVia = direct.Dist(), via.Dist()
	f.AddedRTTP50 = f.RTTVia.P50 - f.RTTDirect.P50
	return nil
}

// roundTrip sends users.info about user and reads frames until its reply: for a session no
// other goroutine reads, on a world with no live activity.
func (c *cheapConn) roundTrip(user string) (time.Duration, error) {
	id := c.nextID.Add(1)
	req := fmt.Appendf(nil, `{"id":%d,"method":"users.info","params":{"users":[%q]}}`, id, user)
	want := fmt.Appendf(nil, `%s%d,`, weftReplyPrefix, id)
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.conn.SetReadDeadline(time.Time{})
	t0 := time.Now()
	if err := c.send(req); err != nil {
		return 0, err
	}
	for {
		fr, err := c.next()
		if err != nil {
			return 0, fmt.Errorf("loadtest: users.info: %w", err)
		}
		if bytes.HasPrefix(fr, want) {
			if !bytes.Contains(fr, []byte(`"ok":true`)) {
				return 0, fmt.Errorf("loadtest: users.info failed: %.200s", fr)
			}
			return time.Since(t0), nil
		}
		if bytes.HasPrefix(fr, weftGoodbyePrefix) {
			return 0, fmt.Errorf("loadtest: %w: %.200s", errGoodbye, fr)
		}
	}
}

// frontRSS opens cfg.Idle sessions through the front, paced, and returns its RSS growth per
// session once its RSS has settled.
func frontRSS(ctx context.Context, cl *Cluster, cfg FrontsConfig, sessions []frontSession) (float64, error) {
	fp := cl.Proxies[0]
	rss := func() (int64, error) {
		if cl.Front == FrontNginx {
			return rssOfGroup(fp.PID())
		}
		return procStatusBytes(fp.PID(), "VmRSS")
	}
	before, err := settled(ctx, rss)
	if err != nil {
		return 0, err
	}
	var conns []*cheapConn
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	err = pacedPairs(ctx, cfg.Idle, 500, func(i int) error {
		s := sessions[i%len(sessions)]
		c, err := dialCheapWithin(ctx, cl.WSURL(fp, s.team), s.tok)
		if err != nil {
			return fmt.Errorf("idle connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
		return nil
	})
	if err != nil {
		return 0, err
	}
	after, err := settled(ctx, rss)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(len(conns)), nil
}
