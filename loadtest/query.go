package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/client"
)

// The query scenario: the same mix of lookups, asked of the edge (sessions of the Go client)
// and of the origin (the origin contract, the only way a client without the edge could ask
// the main region), in the same run, both at a fixed rate, with the origin given a latency
// that stands in for the distance to the main region.

// queryMethods are the mix: users.info (1–5 users), channels.members, users.channels.
var queryMethods = []string{"users.info", "channels.members", "users.channels"}

// QueryConfig configures RunQuery. Zero values are the defaults given.
type QueryConfig struct {
	Team string
	// Sessions send the edge's share; default 50, each a different user.
	Sessions int
	// Rate is requests per second to the edge; default 300. OriginRate to the origin;
	// default Rate/5 (each origin answer costs the origin far more).
	Rate, OriginRate float64
	// Duration of the measured load; default 20s.
	Duration time.Duration
	// OriginLatency is set on the reference origin for the run (and set back to none after);
	// default 200ms, negative: leave the origin alone.
	OriginLatency time.Duration
	Seed          uint64
	Progress      io.Writer
}

// QueryArm is one path's latencies, per method and all together.
type QueryArm struct {
	Requests   int64           `json:"requests"`
	Errors     int64           `json:"errors"`
	FirstError string          `json:"first_error,omitempty"`
	Skipped    int64           `json:"skipped"` // not sent: too many in flight
	Throughput float64         `json:"throughput_per_s"`
	All        Dist            `json:"all"`
	Methods    map[string]Dist `json:"methods"`

	hist    *Hist
	methods map[string]*Hist
	errMu   sync.Mutex
}

func newQueryArm() *QueryArm {
	a := &QueryArm{hist: NewHist(), methods: map[string]*Hist{}}
	for _, m := range queryMethods {
		a.methods[m] = NewHist()
	}
	return a
}

func (a *QueryArm) record(method string, scheduled time.Time, err error) {
	if err != nil {
		a.errMu.Lock()
		a.Errors++
		if a.FirstError == "" {
			a.FirstError = fmt.Sprintf("%s: %v", method, err)
		}
		a.errMu.Unlock()
		return
	}
	d := time.Since(scheduled)
	a.hist.Record(d)
	a.methods[method].Record(d)
}

func (a *QueryArm) finish(started, skipped int64, took time.Duration) {
	a.Requests, a.Skipped = started, skipped
	a.All = a.hist.Dist()
	a.Methods = map[string]Dist{}
	for m, h := range a.methods {
		a.Methods[m] = h.Dist()
	}
	a.Throughput = float64(a.All.N) / took.Seconds()
}

// QueryFigures is what RunQuery measured.
type QueryFigures struct {
	Team            string    `json:"team"`
	OriginLatencyMS float64   `json:"origin_latency_ms"`
	WarmupMS        float64   `json:"warmup_ms"` // the sessions connecting (the edge loading the team)
	Edge            *QueryArm `json:"edge"`
	Origin          *QueryArm `json:"origin"`
	// RestoreError is why the origin's faults could not be set back after the run.
	RestoreError string `json:"restore_error,omitempty"`
}

type queryWorld struct {
	users, channels []string // active users; public channels that are not archived
}

// RunQuery runs the query scenario against t.
func RunQuery(ctx context.Context, t *Target, cfg QueryConfig) (*QueryFigures, error) {
	team, err := t.team(cfg.Team)
	if err != nil {
		return nil, err
	}
	cfg.Team = team
	cfg.Sessions = cmp.Or(cfg.Sessions, 50)
	cfg.Rate = cmp.Or(cfg.Rate, 300)
	cfg.OriginRate = cmp.Or(cfg.OriginRate, cfg.Rate/5)
	cfg.Duration = cmp.Or(cfg.Duration, 20*time.Second)
	cfg.OriginLatency = cmp.Or(cfg.OriginLatency, 200*time.Millisecond)
	w, err := loadQueryWorld(ctx, t, cfg.Team)
	if err != nil {
		return nil, err
	}
	if len(w.users) < cfg.Sessions {
		return nil, fmt.Errorf("loadtest: team %s has %d active users for %d sessions", cfg.Team, len(w.users), cfg.Sessions)
	}
	f := &QueryFigures{Team: cfg.Team, Edge: newQueryArm(), Origin: newQueryArm()}
	if cfg.OriginLatency > 0 {
		f.OriginLatencyMS = float64(cfg.OriginLatency.Microseconds()) / 1000
		restore, err := t.SetOriginLatency(ctx, cfg.OriginLatency)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := restore(); err != nil {
				f.RestoreError = err.Error()
			}
		}()
	}

	warm := time.Now()
	sessions, err := dialSessions(ctx, t, cfg.Team, w.users[:cfg.Sessions], 16)
	defer closeSessions(sessions)
	if err != nil {
		return nil, err
	}
	f.WarmupMS = float64(time.Since(warm).Microseconds()) / 1000

	stop := Progress(cfg.Progress, 2*time.Second, func() string {
		return fmt.Sprintf("query: edge %d answered, origin %d answered", f.Edge.hist.Dist().N, f.Origin.hist.Dist().N)
	})
	defer stop()
	plan := func(i int, salt uint64) (string, map[string]any) {
		r := rand.New(rand.NewPCG(cfg.Seed^salt, uint64(i)))
		switch m := queryMethods[r.IntN(len(queryMethods))]; m {
		case "users.info":
			ids := make([]string, 1+r.IntN(5))
			for k := range ids {
				ids[k] = w.users[r.IntN(len(w.users))]
			}
			return m, map[string]any{"users": ids}
		case "channels.members":
			return m, map[string]any{"channel": w.channels[r.IntN(len(w.channels))], "limit": 1000}
		default:
			return m, map[string]any{"user": w.users[r.IntN(len(w.users))], "limit": 1000}
		}
	}
	var g errgroup.Group
	start := time.Now()
	g.Go(func() error {
		s, k := openLoop(ctx, cfg.Rate, cfg.Duration, 4096, func(ctx context.Context, i int, at time.Time) {
			method, params := plan(i, 0xed6e)
			err := sessions[i%len(sessions)].Call(ctx, method, params, nil)
			f.Edge.record(method, at, err)
		})
		f.Edge.finish(s, k, time.Since(start))
		return nil
	})
	g.Go(func() error {
		s, k := openLoop(ctx, cfg.OriginRate, cfg.Duration, 4096, func(ctx context.Context, i int, at time.Time) {
			method, params := plan(i, 0x0219)
			f.Origin.record(method, at, askOrigin(ctx, t, cfg.Team, method, params))
		})
		f.Origin.finish(s, k, time.Since(start))
		return nil
	})
	g.Wait()
	return f, ctx.Err()
}

func loadQueryWorld(ctx context.Context, t *Target, team string) (*queryWorld, error) {
	users, err := TeamUsers(ctx, t.HTTP, t.OriginURL, t.OriginToken, team)
	if err != nil {
		return nil, err
	}
	chans, err := TeamChannels(ctx, t.HTTP, t.OriginURL, t.OriginToken, team)
	if err != nil {
		return nil, err
	}
	w := &queryWorld{}
	for _, u := range users {
		if !u.Deleted {
			w.users = append(w.users, u.ID)
		}
	}
	for _, c := range chans {
		if !c.IsPrivate && !c.IsArchived {
			w.channels = append(w.channels, c.ID)
		}
	}
	if len(w.users) == 0 || len(w.channels) == 0 {
		return nil, fmt.Errorf("loadtest: team %s has no active users or no public channels", team)
	}
	return w, nil
}

// dialSessions connects one client per user, parallel at a time.
func dialSessions(ctx context.Context, t *Target, team string, users []string, parallel int) ([]*client.Client, error) {
	return dialSessionsWith(ctx, t, team, users, parallel, nil)
}

// dialSessionsWith is dialSessions with onReconnect as every client's Options.OnReconnect.
func dialSessionsWith(ctx context.Context, t *Target, team string, users []string, parallel int, onReconnect func(client.Reconnect)) ([]*client.Client, error) {
	out := make([]*client.Client, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, u := range users {
		g.Go(func() error {
			tok, err := t.Token(team, u)
			if err != nil {
				return err
			}
			dctx, cancel := context.WithTimeout(gctx, 2*time.Minute)
			defer cancel()
			c, err := client.Dial(dctx, client.Options{URL: t.WSURL(), Token: tok, HTTPClient: t.HTTP, SkipBoot: true,
				DialTimeout: time.Minute, OnReconnect: onReconnect})
			if err != nil {
				return fmt.Errorf("session of %s: %w", u, err)
			}
			out[i] = c
			return nil
		})
	}
	err := g.Wait()
	return slices.DeleteFunc(out, func(c *client.Client) bool { return c == nil }), err
}

func closeSessions(cs []*client.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
}

// askOrigin answers method the way a client without the edge would have to, through the
// origin contract (docs/origin.md): users.info is one GET per user, in parallel; the
// contract has no per-channel or per-user membership lookup, so channels.members and
// users.channels walk the team's membership listing.
func askOrigin(ctx context.Context, t *Target, team, method string, params map[string]any) error {
	base := t.OriginURL + "/origin/v1/teams/" + url.PathEscape(team)
	switch method {
	case "users.info":
		var g errgroup.Group
		for _, id := range params["users"].([]string) {
			g.Go(func() error {
				var u map[string]any
				return originJSON(ctx, t.HTTP, http.MethodGet, base+"/users/"+url.PathEscape(id), t.OriginToken, nil, &u)
			})
		}
		return g.Wait()
	case "channels.members", "users.channels":
		ms, err := TeamMemberships(ctx, t.HTTP, t.OriginURL, t.OriginToken, team)
		if err != nil {
			return err
		}
		n := 0
		for _, m := range ms {
			if m.Channel == params["channel"] || m.User == params["user"] {
				n++
			}
		}
		if n == 0 && method == "channels.members" {
			return errors.New("a public channel without members")
		}
		return nil
	}
	return fmt.Errorf("loadtest: no origin path for %s", method)
}

// QueryReport is the query scenario's report.
func QueryReport(f *QueryFigures, workload, command string) (*Report, error) {
	r := &Report{Scenario: "query", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	r.Table = [][]string{{"path", "method", "answered", "p50 (ms)", "p90 (ms)", "p99 (ms)", "p99.9 (ms)", "max (ms)", "per s", "errors", "not sent"}}
	for _, arm := range []struct {
		name string
		a    *QueryArm
	}{{"edge", f.Edge}, {"origin", f.Origin}} {
		for _, m := range append([]string{"all"}, queryMethods...) {
			d, per := arm.a.All, fmt.Sprintf("%.0f", arm.a.Throughput)
			errs, skipped := fmt.Sprint(arm.a.Errors), fmt.Sprint(arm.a.Skipped)
			if m != "all" {
				d, per, errs, skipped = arm.a.Methods[m], "", "", ""
			}
			r.Table = append(r.Table, []string{arm.name, m, fmt.Sprint(d.N), ms(d.P50), ms(d.P90), ms(d.P99), ms(d.P999), ms(d.Max), per, errs, skipped})
		}
	}
	r.Notes = []string{
		fmt.Sprintf("origin latency %.0f ms on every origin request; the edge's sessions connected in %.0f ms (the edge loading the team through that latency)", f.OriginLatencyMS, f.WarmupMS),
		"latency from each request's scheduled start (open loop), so a stall counts against every request it delayed; not sent: due while 4,096 of that path were in flight (their latency is in no percentile: a run with any is a stalled target)",
		"origin path: users.info = one GET per user in parallel; channels.members and users.channels walk the team's membership listing (the origin contract has no narrower lookup)",
	}
	if f.Edge.FirstError != "" || f.Origin.FirstError != "" {
		r.Notes = append(r.Notes, "first errors: edge: "+f.Edge.FirstError+"; origin: "+f.Origin.FirstError)
	}
	p, err := LatencyPlot("query latency: edge vs origin", map[string]*Hist{
		"edge": f.Edge.hist, "origin": f.Origin.hist,
		"edge channels.members": f.Edge.methods["channels.members"], "origin channels.members": f.Origin.methods["channels.members"],
	}, []string{"edge", "origin", "edge channels.members", "origin channels.members"})
	if err := r.addPlot("query-latency.png", p, err); err != nil {
		return nil, err
	}
	return r, nil
}
