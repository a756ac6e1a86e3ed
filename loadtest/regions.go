package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/wan"
)

// The regions scenario (issue 19): a `weft dev --regions N` stack, its far regions behind
// simulated WAN links, driven twice in one run. Phase "regions": each region's clients connect
// to their own region's proxy (they are near it, on loopback). Phase "single": the same
// clients of the far regions connect to the home proxy across a WAN link of their region's
// round trip, made in this process: the deployment without regions, where a far client
// carries the distance on every request. Both phases ask the same queries at the same rate and
// measure publish-to-deliver of the same kind of events; before them, the team's cold load is
// timed in every region (the far ones load it through their WAN link to the origin).

// regionMethods are the queries asked: lookups that the edge answers from its cache, so that
// with regions a far client's latency is its own region's and without it the round trip's.
var regionMethods = []string{"users.info", "channels.members", "autocomplete"}

// RegionsConfig configures RunRegions. Zero values are the defaults given.
type RegionsConfig struct {
	// Clients per region and phase; default 20, each a different user.
	Clients int
	// Rate is queries per second per region; default 50. Duration of each phase's queries;
	// default 15s.
	Rate     float64
	Duration time.Duration
	// Events published (team-wide user_change) per phase, at EventRate a second; default 50
	// at 10/s.
	Events    int
	EventRate float64
	Seed      uint64
	Progress  io.Writer
}

func (c *RegionsConfig) defaults() {
	c.Clients = cmp.Or(c.Clients, 20)
	c.Rate = cmp.Or(c.Rate, 50)
	c.Duration = cmp.Or(c.Duration, 15*time.Second)
	c.Events = cmp.Or(c.Events, 50)
	c.EventRate = cmp.Or(c.EventRate, 10)
}

// RegionArm is what one region's clients measured in one phase.
type RegionArm struct {
	Phase  string  `json:"phase"`  // "regions" or "single"
	Region string  `json:"region"` // where the clients are
	Via    string  `json:"via"`    // what they connect to
	RTTMS  float64 `json:"rtt_ms"` // the region's round trip to home
	// Queries: latency of each request from its scheduled start (open loop).
	Queries *QueryArm `json:"queries"`
	// Deliver is publish-to-deliver of the phase's events to these clients; Expected is
	// events × clients, Lost what never came within 30 s of the last publish.
	Deliver    Dist  `json:"publish_to_deliver"`
	Delivered  int64 `json:"delivered"`
	Expected   int64 `json:"expected"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`

	region  DevRegion
	deliver *Hist
}

// ColdLoad is the first client of a team not yet loaded in a region: from dial to booted.
type ColdLoad struct {
	Size   string  `json:"size,omitempty"`
	Team   string  `json:"team"`
	Users  int     `json:"team_users"`
	Region string  `json:"region"`
	RTTMS  float64 `json:"rtt_ms"`
	MS     float64 `json:"ms"`
	VsHome float64 `json:"vs_home"` // MS over the home region's
}

// RegionsFigures is what RunRegions measured.
type RegionsFigures struct {
	Team string       `json:"team"`
	Cold []ColdLoad   `json:"cold_load"`
	Arms []*RegionArm `json:"arms"`
	// Killed is the killed phase: the farthest region's edges killed under its clients.
	Killed *KilledRegion `json:"killed_region"`
}

// regionsWorld is the team as the queries need it.
type regionsWorld struct {
	users, names, channels []string // active users and their names; public channels
}

// RunRegions runs the regions scenario against t, a spawned `weft dev --regions N` (N ≥ 2).
func RunRegions(ctx context.Context, t *Target, cfg RegionsConfig) (*RegionsFigures, error) {
	cfg.defaults()
	regions, team, err := regionsOf(ctx, t)
	if err != nil {
		return nil, err
	}
	w, err := loadRegionsWorld(ctx, t, team)
	if err != nil {
		return nil, err
	}
	if need := 1 + len(regions) + (2*len(regions)+1)*cfg.Clients; len(w.users) < need {
		return nil, fmt.Errorf("loadtest: team %s has %d active users; %d regions × %d clients × 2 phases and the killed phase's %d need %d",
			team, len(w.users), len(regions), cfg.Clients, cfg.Clients, need)
	}
	f := &RegionsFigures{Team: team}
	if f.Cold, err = regionsCold(ctx, t, regions, team, w.users[:len(regions)]); err != nil {
		return nil, err
	}
	users := w.users[len(regions):]
	for phase, name := range []string{"regions", "single"} {
		arms, err := runRegionsPhase(ctx, t, cfg, w, regions, name, users[phase*len(regions)*cfg.Clients:])
		f.Arms = append(f.Arms, arms...)
		if err != nil {
			return f, err
		}
	}
	f.Killed, err = runRegionsKilled(ctx, t, cfg, w, regions, users[2*len(regions)*cfg.Clients:])
	return f, err
}

// RunRegionsCold times only the cold load of t's team in each region (a world too big to
// drive queries on as well, giant).
func RunRegionsCold(ctx context.Context, t *Target) ([]ColdLoad, error) {
	regions, team, err := regionsOf(ctx, t)
	if err != nil {
		return nil, err
	}
	users, err := TeamUsers(ctx, t.HTTP, t.OriginURL, t.OriginToken, team)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, u := range users {
		if !u.Deleted && len(ids) < len(regions) {
			ids = append(ids, u.ID)
		}
	}
	if len(ids) < len(regions) {
		return nil, fmt.Errorf("loadtest: team %s has %d active users for %d regions", team, len(ids), len(regions))
	}
	return regionsCold(ctx, t, regions, team, ids)
}

func regionsOf(ctx context.Context, t *Target) ([]DevRegion, string, error) {
	if t.stack == nil || len(t.stack.Regions) < 2 {
		return nil, "", errors.New("loadtest: the regions scenario needs a spawned `weft dev --regions N` (N ≥ 2)")
	}
	team, err := t.team("")
	if err != nil {
		return nil, "", err
	}
	return t.stack.Regions, team, regionsReady(ctx, t, t.stack.Regions)
}

// regionsReady waits for every region's proxy to answer /readyz: the stack's start waited for
// home's only, and a far region's proxy says 503 until it has heard from an edge.
func regionsReady(ctx context.Context, t *Target, regions []DevRegion) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, r := range regions {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.ProxyURL+"/readyz", nil)
			if err != nil {
				return err
			}
			resp, err := t.HTTP.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("loadtest: region %s's proxy not ready: %w (last error %v)", r.Name, ctx.Err(), err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

func loadRegionsWorld(ctx context.Context, t *Target, team string) (*regionsWorld, error) {
	type named struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Deleted    bool   `json:"deleted"`
		IsPrivate  bool   `json:"is_private"`
		IsArchived bool   `json:"is_archived"`
	}
	us, err := originPages[named](ctx, t.HTTP, t.OriginURL, t.OriginToken, team, "users")
	if err != nil {
		return nil, err
	}
	cs, err := originPages[named](ctx, t.HTTP, t.OriginURL, t.OriginToken, team, "channels")
	if err != nil {
		return nil, err
	}
	w := &regionsWorld{}
	for _, u := range us {
		if !u.Deleted && u.Name != "" {
			w.users, w.names = append(w.users, u.ID), append(w.names, strings.ToLower(u.Name))
		}
	}
	for _, c := range cs {
		if !c.IsPrivate && !c.IsArchived {
			w.channels = append(w.channels, c.ID)
		}
	}
	if len(w.users) == 0 || len(w.channels) == 0 {
		return nil, fmt.Errorf("loadtest: team %s has no named active users or no public channels", team)
	}
	return w, nil
}

// regionsCold boots one client of team in each region in turn (users[i] in region i), each
// the team's first there, and times it: the far regions' edges load the team from the origin
// through their WAN link.
func regionsCold(ctx context.Context, t *Target, regions []DevRegion, team string, users []string) ([]ColdLoad, error) {
	var out []ColdLoad
	for i, r := range regions {
		tok, err := t.Token(team, users[i])
		if err != nil {
			return nil, err
		}
		start := time.Now()
		c, err := client.Dial(ctx, client.Options{URL: wsURL(r.ProxyURL), Token: tok, HTTPClient: t.HTTP, DialTimeout: 3 * time.Minute})
		if err != nil {
			return nil, fmt.Errorf("loadtest: cold load of %s in region %s: %w", team, r.Name, err)
		}
		took := time.Since(start)
		n := c.Store().Team().UserCount
		c.Close()
		cl := ColdLoad{Team: team, Users: n, Region: r.Name, RTTMS: msOf(r.RTT), MS: msOf(took)}
		if len(out) > 0 && out[0].MS > 0 {
			cl.VsHome = cl.MS / out[0].MS
		} else {
			cl.VsHome = 1
		}
		out = append(out, cl)
	}
	return out, nil
}

// runRegionsPhase connects cfg.Clients clients per region (users from users, in order), in
// phase "regions" to their region's proxy and in "single" the far ones to the home proxy
// across a WAN link of their region's round trip, then runs the queries and the events.
func runRegionsPhase(ctx context.Context, t *Target, cfg RegionsConfig, w *regionsWorld, regions []DevRegion,
	phase string, users []string) ([]*RegionArm, error) {
	home, err := url.Parse(regions[0].ProxyURL)
	if err != nil {
		return nil, fmt.Errorf("loadtest: home proxy URL: %w", err)
	}
	var arms []*RegionArm
	var sessions [][]*client.Client
	var links []*wan.Link
	defer func() { // the sessions first, so that none sees its link go
		for _, s := range sessions {
			closeSessions(s)
		}
		for _, l := range links {
			_ = l.Close()
		}
	}()
	for i, r := range regions {
		a := &RegionArm{Phase: phase, Region: r.Name, Via: r.Name + " proxy", RTTMS: msOf(r.RTT), region: r,
			Queries: newRegionsQueryArm(), deliver: NewHist()}
		ws := wsURL(r.ProxyURL)
		if phase == "single" && r.RTT > 0 {
			l, err := wan.Listen(wan.Config{Upstreams: []string{home.Host}, RTT: r.RTT})
			if err != nil {
				return arms, err
			}
			links = append(links, l)
			ws, a.Via = "ws://"+l.Addr()+"/ws", fmt.Sprintf("home proxy across %v WAN", r.RTT)
		}
		s, err := dialSessionsTo(ctx, t, ws, regionsTeam(t), users[i*cfg.Clients:(i+1)*cfg.Clients], 8, nil)
		sessions = append(sessions, s)
		if err != nil {
			return arms, fmt.Errorf("loadtest: %s phase, region %s: %w", phase, r.Name, err)
		}
		arms = append(arms, a)
	}
	stop := Progress(cfg.Progress, 2*time.Second, func() string {
		var parts []string
		for _, a := range arms {
			parts = append(parts, fmt.Sprintf("%s %d", a.Region, a.Queries.hist.Dist().N))
		}
		return fmt.Sprintf("regions: %s phase: answered %s", phase, strings.Join(parts, ", "))
	})
	defer stop()
	var g errgroup.Group
	for i, a := range arms {
		g.Go(func() error {
			start := time.Now()
			s, k := openLoop(ctx, cfg.Rate, cfg.Duration, 4096, func(ctx context.Context, n int, at time.Time) {
				method, params := regionsQuery(w, cfg.Seed^uint64(i+1), n)
				a.Queries.record(method, at, sessions[i][n%len(sessions[i])].Call(ctx, method, params, nil))
			})
			a.Queries.finish(s, k, time.Since(start))
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return arms, err
	}
	return arms, regionsEvents(ctx, t, cfg, w, arms, sessions)
}

func regionsTeam(t *Target) string { team, _ := t.team(""); return team }

func newRegionsQueryArm() *QueryArm {
	a := &QueryArm{hist: NewHist(), methods: map[string]*Hist{}}
	for _, m := range regionMethods {
		a.methods[m] = NewHist()
	}
	return a
}

// regionsQuery is request n of a region's stream: users.info of 1–5 users, the first 100
// members of a public channel, or autocomplete of the first 3 letters of a user's name.
func regionsQuery(w *regionsWorld, seed uint64, n int) (string, map[string]any) {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	switch m := regionMethods[r.IntN(len(regionMethods))]; m {
	case "users.info":
		ids := make([]string, 1+r.IntN(5))
		for k := range ids {
			ids[k] = w.users[r.IntN(len(w.users))]
		}
		return m, map[string]any{"users": ids}
	case "channels.members":
		return m, map[string]any{"channel": w.channels[r.IntN(len(w.channels))], "limit": 100}
	default:
		name := w.names[r.IntN(len(w.names))]
		return m, map[string]any{"query": name[:min(3, len(name))], "limit": 10}
	}
}

// regionsEvents publishes cfg.Events team-wide events at the origin and measures their
// delivery to every arm's clients: latency, and how many never came or came twice.
func regionsEvents(ctx context.Context, t *Target, cfg RegionsConfig, w *regionsWorld, arms []*RegionArm, sessions [][]*client.Client) error {
	var delivered, expected atomic.Int64
	for i, a := range arms {
		a.Expected = int64(cfg.Events) * int64(len(sessions[i]))
		expected.Add(a.Expected)
	}
	allIn := make(chan struct{})
	var once sync.Once
	rctx, stopReaders := context.WithCancel(ctx)
	var readers sync.WaitGroup
	var mu sync.Mutex // guards the arms' counts
	for i, a := range arms {
		for _, c := range sessions[i] {
			readers.Go(func() {
				seen := map[int64]bool{}
				for {
					select {
					case <-rctx.Done():
						return
					case ev, ok := <-c.Events():
						if !ok {
							return
						}
						at := time.Now()
						pub, ok := publishedAt(ev)
						if !ok {
							continue
						}
						mu.Lock()
						if seen[ev.Seq] {
							a.Duplicates++
							mu.Unlock()
							continue
						}
						seen[ev.Seq] = true
						a.Delivered++
						a.deliver.Record(at.Sub(pub))
						mu.Unlock()
						if delivered.Add(1) == expected.Load() {
							once.Do(func() { close(allIn) })
						}
					}
				}
			})
		}
	}
	defer func() { stopReaders(); readers.Wait() }()
	team := regionsTeam(t)
	var pubErr atomic.Pointer[error]
	dur := time.Duration(float64(cfg.Events) / cfg.EventRate * float64(time.Second))
	_, skipped := openLoop(ctx, cfg.EventRate, dur+time.Second/time.Duration(max(cfg.EventRate, 1)), 1024, func(ctx context.Context, i int, _ time.Time) {
		if i >= cfg.Events {
			return
		}
		if err := postTimed(ctx, t, team, w.users[i%len(w.users)]); err != nil {
			pubErr.CompareAndSwap(nil, &err)
		}
	})
	if e := pubErr.Load(); e != nil {
		return fmt.Errorf("loadtest: regions: publishing: %w", *e)
	}
	if skipped > 0 {
		return fmt.Errorf("loadtest: regions: %d events not published", skipped)
	}
	select {
	case <-allIn:
	case <-time.After(30 * time.Second): // what is still missing is lost
	case <-ctx.Done():
		return ctx.Err()
	}
	stopReaders()
	readers.Wait()
	for _, a := range arms {
		a.Lost = a.Expected - a.Delivered
		a.Deliver = a.deliver.Dist()
	}
	return nil
}

// dialSessionsTo connects one client per user to ws, parallel at a time (onReconnect: see
// dialSessionsWith).
func dialSessionsTo(ctx context.Context, t *Target, ws, team string, users []string, parallel int, onReconnect func(client.Reconnect)) ([]*client.Client, error) {
	tt := *t
	tt.URL = "http" + strings.TrimPrefix(ws, "ws")
	tt.URL = strings.TrimSuffix(tt.URL, "/ws")
	return dialSessionsWith(ctx, &tt, team, users, parallel, onReconnect)
}

// reconnects is "reconnects: connection lost or refused 20, goodbye moved 20".
func reconnects(by map[string]int) string {
	var parts []string
	for _, why := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s %d", why, by[why]))
	}
	return "reconnects: " + strings.Join(parts, ", ")
}

// servedIn is "home 20" or "home 12, a 8": clients by the region that served them.
func servedIn(by map[string]int) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s %d", name, by[name]))
	}
	return "in " + strings.Join(parts, ", ")
}

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") + "/ws" }

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// RegionsReport is the regions scenario's report.
func RegionsReport(f *RegionsFigures, workload, command string) (*Report, error) {
	r := &Report{Scenario: "regions", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	r.Table = [][]string{{"phase", "clients in", "connect to", "measure", "n", "p50 (ms)", "p99 (ms)", "max (ms)", "errors / lost / dup"}}
	for _, c := range f.Cold {
		what := "cold load"
		if c.Size != "" {
			what += " " + c.Size
		}
		r.Table = append(r.Table, []string{"regions", c.Region, c.Region + " proxy",
			fmt.Sprintf("%s (%d users)", what, c.Users), "1", ms(c.MS), "", "", fmt.Sprintf("%.2f× home", c.VsHome)})
	}
	hists := map[string]*Hist{}
	var order []string
	for _, a := range f.Arms {
		for _, m := range regionMethods {
			d := a.Queries.Methods[m]
			r.Table = append(r.Table, []string{a.Phase, a.Region, a.Via, m, fmt.Sprint(d.N), ms(d.P50), ms(d.P99), ms(d.Max), ""})
		}
		r.Table[len(r.Table)-1][8] = fmt.Sprintf("%d errors, %d not sent", a.Queries.Errors, a.Queries.Skipped)
		d := a.Deliver
		r.Table = append(r.Table, []string{a.Phase, a.Region, a.Via, "publish-to-deliver", fmt.Sprint(d.N), ms(d.P50), ms(d.P99), ms(d.Max),
			fmt.Sprintf("%d lost, %d dup", a.Lost, a.Duplicates)})
		name := fmt.Sprintf("with regions: %s near its proxy", a.Region)
		if a.Phase == "single" {
			name = fmt.Sprintf("single region: %s to the %s", a.Region, a.Via)
		}
		hists[name], order = a.Queries.hist, append(order, name)
	}
	r.Notes = []string{
		"phase regions: each region's clients connect to their own region's proxy (loopback: they are near it); phase single: the far regions' clients connect to the home proxy across a WAN link of their region's round trip (the deployment without regions)",
		"cold load: the team's first client in each region, from dial to booted (the far regions' edges load it across their WAN link to the origin), the regions in turn",
		"query latency from each request's scheduled start (open loop); publish-to-deliver from the POST to the origin (home) to receipt (one machine, one clock)",
	}
	if k := f.Killed; k != nil {
		r.Table = append(r.Table,
			[]string{"killed", k.Region, k.Region + " proxy", fmt.Sprintf("kill → every client resumed elsewhere (%v)", servedIn(k.ServedIn)), fmt.Sprint(k.Clients), "", "", ms(k.ResumedMS), ""},
			[]string{"killed", k.Region, k.Region + " proxy", "kill → every client has every change made until then", fmt.Sprint(k.Clients), "", "", ms(k.CaughtUpMS), reconnects(k.Reconnects)},
			[]string{"killed", k.Region, k.Region + " proxy", "edges started → every client back home", fmt.Sprint(k.Clients), "", "", ms(k.HomeMS),
				fmt.Sprintf("%d changes: %d lost, %d dup", k.Changes, k.Lost, k.Duplicates)})
		r.Notes = append(r.Notes, fmt.Sprintf("phase killed: region %s's edges killed through weft dev's control endpoint as a crash would (connections cut, no goodbye) under %d clients connected to its proxy, while the origin changed their team %.0f times a second; its proxy falls back to the next region; then new edges started in %s; max = the last client", k.Region, k.Clients, k.ChangeRate, k.Region))
	}
	for _, a := range f.Arms {
		if a.Queries.FirstError != "" {
			r.Notes = append(r.Notes, fmt.Sprintf("first error, %s phase, region %s: %s", a.Phase, a.Region, a.Queries.FirstError))
		}
	}
	p, err := LatencyPlot("query latency per region: with regions, and from the home region across the WAN", hists, order)
	if err := r.addPlot("regions-latency.png", p, err); err != nil {
		return nil, err
	}
	return r, nil
}
