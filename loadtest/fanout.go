package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/origin/reference"
)

// The fanout scenario: C sessions of one team connected, team-wide events (user_change, every
// session gets each) published through the origin at a rate; it measures publish-to-deliver
// latency, deliveries per second, and how many events the edge took from NATS against how
// many a design with one upstream subscription per connection would have carried.

// FanoutConfig configures RunFanout. Zero values are the defaults given.
type FanoutConfig struct {
	Team string
	// Sessions connected, each a different user; default 1,000.
	Sessions int
	// Rate is events published per second; default 10. Events in all; default 200.
	Rate   float64
	Events int
	// Parallel sessions connect at once; default 32.
	Parallel int
	Progress io.Writer
}

// FanoutFigures is what RunFanout measured.
type FanoutFigures struct {
	Team     string  `json:"team"`
	Sessions int     `json:"sessions"`
	Events   int     `json:"events"`
	Rate     float64 `json:"rate_per_s"`
	// Deliveries of the events to sessions; Expected is Events × Sessions.
	Deliveries int64 `json:"deliveries"`
	Expected   int64 `json:"expected"`
	Duplicates int64 `json:"duplicates"`
	// DeliveriesPerSecond: Deliveries over the time from the first publish to the last
	// delivery.
	DeliveriesPerSecond float64 `json:"deliveries_per_s"`
	// Latency from the publisher posting an event to a session receiving it.
	Latency Dist `json:"publish_to_deliver"`
	// EdgeEventsIn is the edge's weft_edge_events_in_total over the run: events it took from
	// NATS. PerConnection is what one upstream subscription per connection would have
	// carried for the same events: each event once per connection of its team.
	EdgeEventsIn  float64 `json:"edge_events_in"`
	PerConnection int64   `json:"per_connection_design"`
	// Per10s are the same two, per 10 seconds of this rate (the seed talk's unit).
	EdgeIn10s        float64 `json:"edge_events_in_per_10s"`
	PerConnection10s float64 `json:"per_connection_design_per_10s"`

	hist *Hist
}

// RunFanout runs the fanout scenario against t. The events are user_change on the sessions'
// own users with a title that carries the publish time.
func RunFanout(ctx context.Context, t *Target, cfg FanoutConfig) (*FanoutFigures, error) {
	team, err := t.team(cfg.Team)
	if err != nil {
		return nil, err
	}
	cfg.Team = team
	cfg.Sessions = cmp.Or(cfg.Sessions, 1000)
	cfg.Rate = cmp.Or(cfg.Rate, 10)
	cfg.Events = cmp.Or(cfg.Events, 200)
	cfg.Parallel = cmp.Or(cfg.Parallel, 32)
	w, err := loadQueryWorld(ctx, t, cfg.Team)
	if err != nil {
		return nil, err
	}
	if len(w.users) < cfg.Sessions {
		return nil, fmt.Errorf("loadtest: team %s has %d active users for %d sessions", cfg.Team, len(w.users), cfg.Sessions)
	}
	sessions, err := dialSessions(ctx, t, cfg.Team, w.users[:cfg.Sessions], cfg.Parallel)
	defer closeSessions(sessions)
	if err != nil {
		return nil, err
	}
	f := &FanoutFigures{Team: cfg.Team, Sessions: cfg.Sessions, Events: cfg.Events, Rate: cfg.Rate,
		Expected: int64(cfg.Events) * int64(cfg.Sessions)}
	h := NewHist()
	var delivered, dups atomic.Int64
	var lastAt atomic.Int64 // unix ns of the latest delivery
	var perSeq sync.Map     // seq → *atomic.Int64 sessions reached, to say which events fell short
	rctx, stopReaders := context.WithCancel(ctx)
	var readers sync.WaitGroup
	defer func() { stopReaders(); readers.Wait() }()
	allIn := make(chan struct{})
	var once sync.Once
	for _, c := range sessions {
		readers.Go(func() {
			seen := map[int64]bool{}
			for {
				select {
				case <-rctx.Done():
					return
				case ev, ok := <-c.Events():
					if !ok { // the client stopped: its deliveries fall short, and the run says so
						return
					}
					at := time.Now()
					if ev.Type != "user_change" || ev.User == nil {
						continue
					}
					pub, ok := publishedAt(ev)
					if !ok {
						continue
					}
					if seen[ev.Seq] {
						dups.Add(1)
						continue
					}
					seen[ev.Seq] = true
					n, _ := perSeq.LoadOrStore(ev.Seq, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
					h.Record(at.Sub(pub))
					lastAt.Store(at.UnixNano())
					if delivered.Add(1) == f.Expected {
						once.Do(func() { close(allIn) })
					}
				}
			}
		})
	}
	before, err := t.Metrics(ctx, "weft_edge_events_in_total")
	if err != nil {
		return nil, err
	}
	stop := Progress(cfg.Progress, 2*time.Second, func() string {
		return fmt.Sprintf("fanout: %d of %d deliveries", delivered.Load(), f.Expected)
	})
	defer stop()
	start := time.Now()
	var pubErr atomic.Pointer[error]
	dur := time.Duration(float64(cfg.Events) / cfg.Rate * float64(time.Second))
	_, skipped := openLoop(ctx, cfg.Rate, dur+time.Second/time.Duration(max(cfg.Rate, 1)), 1024, func(ctx context.Context, i int, _ time.Time) {
		if i >= cfg.Events {
			return
		}
		if err := postTimed(ctx, t, cfg.Team, w.users[i%cfg.Sessions]); err != nil {
			pubErr.CompareAndSwap(nil, &err)
		}
	})
	if e := pubErr.Load(); e != nil {
		return nil, fmt.Errorf("loadtest: fanout: publishing: %w", *e)
	}
	if skipped > 0 {
		return nil, fmt.Errorf("loadtest: fanout: %d events not published: 1,024 publishes were waiting on the origin", skipped)
	}
	select {
	case <-allIn:
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after, err := t.Metrics(ctx, "weft_edge_events_in_total")
	if err != nil {
		return nil, err
	}
	f.Deliveries, f.Duplicates = delivered.Load(), dups.Load()
	if f.Duplicates > 0 { // docs/protocol.md section 5: no event is delivered twice on one connection
		return f, fmt.Errorf("loadtest: fanout: %d events delivered twice to the same session", f.Duplicates)
	}
	if f.Deliveries < f.Expected {
		var short []string
		seqs := 0
		perSeq.Range(func(k, v any) bool {
			seqs++
			if n := v.(*atomic.Int64).Load(); n < int64(cfg.Sessions) && len(short) < 5 {
				short = append(short, fmt.Sprintf("seq %d reached %d", k, n))
			}
			return true
		})
		return f, fmt.Errorf("loadtest: fanout: %d of %d deliveries 30s after the last publish; %d events seen of %d; short: %v",
			f.Deliveries, f.Expected, seqs, cfg.Events, short)
	}
	f.DeliveriesPerSecond = float64(f.Deliveries) / time.Unix(0, lastAt.Load()).Sub(start).Seconds()
	f.Latency = h.Dist()
	f.EdgeEventsIn = after["weft_edge_events_in_total"] - before["weft_edge_events_in_total"]
	f.PerConnection = int64(cfg.Events) * int64(cfg.Sessions)
	f.EdgeIn10s = f.EdgeEventsIn / float64(cfg.Events) * cfg.Rate * 10
	f.PerConnection10s = float64(f.PerConnection) / float64(cfg.Events) * cfg.Rate * 10
	f.hist = h
	return f, nil
}

// timedPrefix starts the title of a user_change that carries its publish time (unix ns), so
// that whoever receives it knows how long it took.
const timedPrefix = "fanout "

// postTimed makes the origin publish a user_change of user whose title is the time now.
func postTimed(ctx context.Context, t *Target, team, user string) error {
	title := timedPrefix + strconv.FormatInt(time.Now().UnixNano(), 10)
	_, err := PostEvents(ctx, t.HTTP, t.OriginURL, t.OriginToken, team, reference.EventsRequest{Type: "user_change", User: user, Title: &title})
	return err
}

// publishedAt is when a postTimed event was published; false for any other event.
func publishedAt(ev *client.Event) (time.Time, bool) {
	if ev.Type != client.EventUserChange || ev.User == nil {
		return time.Time{}, false
	}
	pub, ok := strings.CutPrefix(ev.User.Title, timedPrefix)
	ns, err := strconv.ParseInt(pub, 10, 64)
	if !ok || err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// FanoutReport is the fanout scenario's report.
func FanoutReport(f *FanoutFigures, workload, command string) (*Report, error) {
	r := &Report{Scenario: "fanout", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	d := f.Latency
	r.Table = [][]string{
		{"sessions", "events", "deliveries", "per s", "p50 (ms)", "p90 (ms)", "p99 (ms)", "p99.9 (ms)", "max (ms)", "into the edge per 10 s", "per-connection design per 10 s"},
		{fmt.Sprint(f.Sessions), fmt.Sprint(f.Events), fmt.Sprint(f.Deliveries), fmt.Sprintf("%.0f", f.DeliveriesPerSecond),
			ms(d.P50), ms(d.P90), ms(d.P99), ms(d.P999), ms(d.Max), fmt.Sprintf("%.0f", f.EdgeIn10s), fmt.Sprintf("%.0f", f.PerConnection10s)},
	}
	r.Notes = []string{
		fmt.Sprintf("events into the edge from NATS: %.0f (weft_edge_events_in_total); one subscription per connection would have carried %d (%.0f×)",
			f.EdgeEventsIn, f.PerConnection, float64(f.PerConnection)/max(f.EdgeEventsIn, 1)),
		"latency: the publisher's clock at the POST to the origin, to the session's clock at receipt (one machine, one clock)",
	}
	if f.hist != nil {
		p, err := LatencyPlot("publish-to-deliver latency", map[string]*Hist{"user_change to every session": f.hist},
			[]string{"user_change to every session"})
		if err := r.addPlot("fanout-latency.png", p, err); err != nil {
			return nil, err
		}
	}
	return r, nil
}
