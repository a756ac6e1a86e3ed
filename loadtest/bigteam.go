package loadtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin/reference"
)

// The bigteam scenario: one big team's sessions on one server, weft's edge (`weft dev`) and,
// in the same run on the same machine, a server on the centrifuge library (centrifuge.go)
// serving the same clients the same load. Per server and run:
//
//   - idle: Sessions cheap clients (cheap.go) in worker processes connect; RSS per session is
//     the RSS they added over the server's RSS with only the probers connected;
//   - paced: one team-wide event per second, each stamped with its publish time: the
//     publish-to-receive latency of every delivery, and the users.info round trip of Probers
//     other sessions (in this process) asking every ProbeEvery meanwhile; and CPU per
//     delivery, the server's less what the probers cost it (measured alone just before);
//   - burst: Burst team-wide events published at once: server and client CPU per delivery,
//     and deliveries per second.
//
// No server can deliver an event to its last recipient sooner than the CPU of all its
// deliveries, the server's and the clients' (which share the machine), spread over the
// machine's cores: that floor, from the paced phase's CPU per delivery, is reported beside
// each p99. Everything runs Runs times (weft then centrifuge, each on a fresh process) and each
// figure is reported with its spread.

// BigTeamConfig configures RunBigTeam. Zero values are the defaults given.
type BigTeamConfig struct {
	// WeftBin is the weft binary; WorkerBin is the program the client workers and the
	// centrifuge server run (`WorkerBin cheap-worker`, `WorkerBin centrifuge-server`):
	// weft-loadtest itself. Both required.
	WeftBin, WorkerBin string
	// Size is the world `weft dev` serves; default 32k. Its first team is the big team.
	Size string
	// DevArgs are more flags for `weft dev`.
	DevArgs []string
	// Servers are the servers to measure, in order: "weft", "centrifuge"; default both.
	Servers []string
	// Sessions is how many sessions of the team connect; default 10,000, PerWorker (default
	// 5,000) per worker process, at nice WorkerNice (default 10: they stand in for devices
	// elsewhere).
	Sessions, PerWorker, WorkerNice int
	// Probers are the other sessions asking users.info every ProbeEvery during the paced
	// phase; default 100 every 100ms.
	Probers    int
	ProbeEvery time.Duration
	// Paced is how many events the paced phase publishes, one per PacedEvery; default 20,
	// one a second.
	Paced      int
	PacedEvery time.Duration
	// Burst is how many events the burst publishes at once; default 200.
	Burst int
	// Runs is how many times everything runs; default 3.
	Runs     int
	Stderr   io.Writer
	Progress io.Writer
}

// BigTeamServer is one server's figures in one run.
type BigTeamServer struct {
	Server   string `json:"server"`
	Sessions int    `json:"sessions"`
	// RSSBase is the server's RSS with the probers connected, RSS with every session too.
	RSSBase          int64   `json:"rss_base_bytes"`
	RSS              int64   `json:"rss_bytes"`
	IdleBytesPerConn float64 `json:"idle_bytes_per_session"`
	Paced            Dist    `json:"paced"`
	Probe            Dist    `json:"probe"`
	BurstDeliveries  int64   `json:"burst_deliveries"`
	BurstSeconds     float64 `json:"burst_seconds"`
	DeliveriesPerSec float64 `json:"deliveries_per_second"`
	ServerNSPerDeliv float64 `json:"server_cpu_ns_per_delivery"`
	ClientNSPerDeliv float64 `json:"client_cpu_ns_per_delivery"`
	FloorMS          float64 `json:"floor_ms"` // per paced event, see the scenario's comment
	// PacedServerNS and PacedClientNS are CPU per delivery in the paced phase: the server's
	// (less what the probers cost it, ProbeCPUMS per second, measured alone just before) and
	// the workers' clients'.
	PacedServerNS     float64 `json:"paced_server_cpu_ns_per_delivery"`
	PacedClientNS     float64 `json:"paced_client_cpu_ns_per_delivery"`
	ProbeCPUMS        float64 `json:"probe_server_cpu_ms_per_s"`
	PacedDeliveries   int64   `json:"paced_deliveries"`
	Failed            int64   `json:"failed_sessions"`
	FirstClientError  string  `json:"first_client_error,omitempty"`
	ServerCPUAtIdleMS float64 `json:"server_cpu_idle_ms_per_s"`
}

// BigTeamFigures is what RunBigTeam measured.
type BigTeamFigures struct {
	Team     string            `json:"team"`
	Sessions int               `json:"sessions"`
	Probers  int               `json:"probers"`
	Paced    int               `json:"paced_events"`
	Burst    int               `json:"burst_events"`
	Cores    int               `json:"cores"`
	Runs     [][]BigTeamServer `json:"runs"` // per run, per server
}

// bigTeamWorld is what every run needs of the world, read once.
type bigTeamWorld struct {
	team    string
	users   []string // the sessions' users, then the probers'
	tokens  []string
	subject json.RawMessage // the user whose user_change the events are
	cent    centrifugeConfig
}

// RunBigTeam runs the bigteam scenario.
func RunBigTeam(ctx context.Context, cfg BigTeamConfig) (*BigTeamFigures, error) {
	if cfg.WeftBin == "" || cfg.WorkerBin == "" {
		return nil, errors.New("loadtest: bigteam needs the weft binary and the worker program")
	}
	cfg.Size = cmp.Or(cfg.Size, "32k")
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{"weft", "centrifuge"}
	}
	cfg.Sessions = cmp.Or(cfg.Sessions, 10_000)
	cfg.PerWorker = cmp.Or(cfg.PerWorker, 5_000)
	cfg.WorkerNice = cmp.Or(cfg.WorkerNice, 10)
	cfg.Probers = cmp.Or(cfg.Probers, 100)
	cfg.ProbeEvery = cmp.Or(cfg.ProbeEvery, 100*time.Millisecond)
	cfg.Paced = cmp.Or(cfg.Paced, 20)
	cfg.PacedEvery = cmp.Or(cfg.PacedEvery, time.Second)
	cfg.Burst = cmp.Or(cfg.Burst, 200)
	cfg.Runs = cmp.Or(cfg.Runs, 3)
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if _, err := RaiseFileLimit(); err != nil {
		return nil, err
	}
	f := &BigTeamFigures{Sessions: cfg.Sessions, Probers: cfg.Probers, Paced: cfg.Paced, Burst: cfg.Burst, Cores: runtime.NumCPU()}
	var w *bigTeamWorld
	for run := range cfg.Runs {
		var servers []BigTeamServer
		for _, name := range cfg.Servers {
			r := &bigTeamRun{cfg: cfg, run: run}
			var s *BigTeamServer
			var err error
			switch name {
			case "weft":
				s, w, err = r.weft(ctx, w)
			case "centrifuge":
				if w == nil {
					return nil, errors.New("loadtest: bigteam: centrifuge needs weft first (its world comes from weft's origin)")
				}
				s, err = r.centrifuge(ctx, w)
			default:
				return nil, fmt.Errorf("loadtest: bigteam: server %q: want weft or centrifuge", name)
			}
			if err != nil {
				return f, fmt.Errorf("run %d, %s: %w", run+1, name, err)
			}
			servers = append(servers, *s)
		}
		f.Runs = append(f.Runs, servers)
	}
	f.Team = w.team
	return f, nil
}

// bigTeamRun is one server's run.
type bigTeamRun struct {
	cfg   BigTeamConfig
	run   int
	phase atomic.Value // string, for the progress line
}

// bigTeamServer is what a run drives: a server under measurement.
type bigTeamServer struct {
	name, proto, wsURL string
	pid                int
	heartbeat          time.Duration
	// stamped publishes one team-wide event stamped with now; burst publishes n at once.
	stamped func(ctx context.Context) error
	burst   func(ctx context.Context, n int) error
	// sessions is how many sessions the server holds.
	sessions func(ctx context.Context) (int, error)
}

func (r *bigTeamRun) weft(ctx context.Context, w *bigTeamWorld) (*BigTeamServer, *bigTeamWorld, error) {
	r.phase.Store("starting weft dev")
	t, err := Spawn(ctx, r.cfg.WeftBin, r.cfg.Stderr, append([]string{"--size", r.cfg.Size}, r.cfg.DevArgs...)...)
	if err != nil {
		return nil, nil, err
	}
	defer t.Close()
	if w == nil {
		if w, err = r.world(ctx, t); err != nil {
			return nil, nil, err
		}
	}
	var subject struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(w.subject, &subject)
	srv := &bigTeamServer{name: "weft", proto: protoWeft, wsURL: t.WSURL(), pid: t.Stack().PID(), heartbeat: 30 * time.Second,
		stamped: func(ctx context.Context) error { return postTimed(ctx, t, w.team, subject.ID) },
		burst: func(ctx context.Context, n int) error {
			title := "burst"
			_, err := PostEvents(ctx, t.HTTP, t.OriginURL, t.OriginToken, w.team,
				reference.EventsRequest{Type: "user_change", User: subject.ID, Title: &title, Count: n})
			return err
		},
		sessions: func(ctx context.Context) (int, error) {
			m, err := t.Metrics(ctx, "weft_edge_connections")
			return int(m["weft_edge_connections"]), err
		},
	}
	s, err := r.measure(ctx, srv, w)
	return s, w, err
}

func (r *bigTeamRun) centrifuge(ctx context.Context, w *bigTeamWorld) (*BigTeamServer, error) {
	r.phase.Store("starting the centrifuge server")
	c, err := startCentrifuge(ctx, r.cfg.WorkerBin, w.cent, r.cfg.Stderr)
	if err != nil {
		return nil, err
	}
	defer c.close()
	// The same user_change as weft's events carry: the subject user with its title set.
	body := func(title string) []byte {
		var u map[string]any
		_ = json.Unmarshal(w.subject, &u)
		u["title"] = title
		b, _ := json.Marshal(map[string]any{"type": "user_change", "user": u})
		return b
	}
	srv := &bigTeamServer{name: "centrifuge", proto: protoCentrifuge, wsURL: c.wsURL(), pid: c.PID(),
		stamped: func(ctx context.Context) error {
			return c.publish(ctx, w.team, body(timedPrefix+strconv.FormatInt(time.Now().UnixNano(), 10)), 1)
		},
		burst:    func(ctx context.Context, n int) error { return c.publish(ctx, w.team, body("burst"), n) },
		sessions: c.clients,
	}
	return r.measure(ctx, srv, w)
}

// world reads the team, its users and their tokens from the first weft stack.
func (r *bigTeamRun) world(ctx context.Context, t *Target) (*bigTeamWorld, error) {
	team, err := t.team("")
	if err != nil {
		return nil, err
	}
	raw, err := originPages[json.RawMessage](ctx, t.HTTP, t.OriginURL, t.OriginToken, team, "users")
	if err != nil {
		return nil, err
	}
	w := &bigTeamWorld{team: team, cent: centrifugeConfig{Secret: token.DevSecret, Users: map[string]map[string]json.RawMessage{team: {}}}}
	for _, u := range raw {
		var id struct {
			ID      string `json:"id"`
			Deleted bool   `json:"deleted"`
		}
		if json.Unmarshal(u, &id) != nil || id.ID == "" {
			continue
		}
		w.cent.Users[team][id.ID] = u
		if !id.Deleted {
			w.users = append(w.users, id.ID)
		}
	}
	need := r.cfg.Sessions + r.cfg.Probers + 1
	if len(w.users) < need {
		return nil, fmt.Errorf("loadtest: team %s has %d active users, the run needs %d", team, len(w.users), need)
	}
	w.subject = w.cent.Users[team][w.users[need-1]] // a user with no session: its events are everyone's
	w.users = w.users[:need-1]
	for _, u := range w.users {
		tok, err := t.Token(team, u)
		if err != nil {
			return nil, err
		}
		w.tokens = append(w.tokens, tok)
	}
	return w, nil
}
