package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/origin/reference"
)

// The regions scenario's last phase, "killed": the farthest region's edges are killed (through
// `weft dev`'s control endpoint, as a crash would: connections cut, no goodbye) under clients
// connected to its proxy while the origin keeps changing their team. The proxy falls back to
// the next region; the phase times how long until every client is served there again, and,
// once the region's edges are started again, until every one is back home, and counts the
// changes any client never got or got twice.

// KilledRegion is what the killed phase measured.
type KilledRegion struct {
	Region  string `json:"region"`
	Clients int    `json:"clients"`
	// ServedIn counts the clients by the region that served them after the kill.
	ServedIn map[string]int `json:"served_in"`
	// ResumedMS: from the kill to the last client's hello from another region (resumed).
	ResumedMS float64 `json:"resumed_ms"`
	// CaughtUpMS: from the kill to every client having every change published up to the
	// moment the last one resumed.
	CaughtUpMS float64 `json:"caught_up_ms"`
	// HomeMS: from the start of the region's new edges to the last client's hello from it.
	HomeMS float64 `json:"home_ms"`
	// Changes the loadtest published during the phase (team-wide, each for every client);
	// Lost and Duplicates count, over clients, those never handed over and those handed over
	// twice (the client's own dropped duplicates included).
	// Reconnects counts the clients' attempts to reconnect by why the previous one ended.
	Reconnects map[string]int `json:"reconnects"`
	Changes    int            `json:"changes"`
	ChangeRate float64        `json:"change_rate"` // a second
	Lost       int64          `json:"lost"`
	Duplicates int64          `json:"duplicates"`
}

// killedSession is a client of the killed region and the seqs it was handed.
type killedSession struct {
	c    *client.Client
	mu   sync.Mutex
	seen map[int64]int
}

func (s *killedSession) has(seqs []int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range seqs {
		if s.seen[q] == 0 {
			return false
		}
	}
	return true
}

// runRegionsKilled runs the killed phase with cfg.Clients clients (users, in order) of the
// farthest region.
func runRegionsKilled(ctx context.Context, t *Target, cfg RegionsConfig, w *regionsWorld, regions []DevRegion, users []string) (*KilledRegion, error) {
	if t.stack == nil || t.stack.ControlURL == "" {
		return nil, errors.New("loadtest: the killed-region phase needs `weft dev --regions`'s control endpoint (a weft dev that prints no control line is too old)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	r := regions[len(regions)-1]
	team := regionsTeam(t)
	var rmu sync.Mutex
	retries := map[string]int{} // why clients reconnected, and how many times
	cs, err := dialSessionsTo(ctx, t, wsURL(r.ProxyURL), team, users[:cfg.Clients], 8, func(why client.Reconnect) {
		rmu.Lock()
		defer rmu.Unlock()
		retries[reconnectKind(why)]++
	})
	var readers sync.WaitGroup
	defer func() {
		closeSessions(cs) // ends their Events, and so the readers
		readers.Wait()
	}()
	if err != nil {
		return nil, fmt.Errorf("loadtest: killed phase, region %s: %w", r.Name, err)
	}
	sessions := make([]*killedSession, len(cs))
	for i, c := range cs {
		s := &killedSession{c: c, seen: map[int64]int{}}
		sessions[i] = s
		readers.Go(func() {
			for ev := range c.Events() {
				s.mu.Lock()
				s.seen[ev.Seq]++
				s.mu.Unlock()
			}
		})
	}
	k := &KilledRegion{Region: r.Name, Clients: len(cs), ServedIn: map[string]int{}, ChangeRate: cfg.EventRate}

	// The changes, at cfg.EventRate until stopped; published holds their seqs.
	var pmu sync.Mutex
	var published []int64
	var pubErr error
	pctx, stopPub := context.WithCancel(ctx)
	var pub sync.WaitGroup
	pub.Go(func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.EventRate))
		defer tick.Stop()
		for i := 0; ; i++ {
			reply, err := PostEvents(pctx, t.HTTP, t.OriginURL, t.OriginToken, team,
				reference.EventsRequest{Type: "user_change", User: w.users[i%len(w.users)]})
			pmu.Lock()
			if err == nil {
				published = append(published, reply.LastSeq)
			} else if pctx.Err() == nil && pubErr == nil {
				pubErr = err
			}
			pmu.Unlock()
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopPub()
			pub.Wait()
		}
	}
	defer stop()
	now := func() []int64 {
		pmu.Lock()
		defer pmu.Unlock()
		return append([]int64(nil), published...)
	}
	every := func(what string, within time.Duration, cond func(*killedSession) bool) error {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		for {
			all := true
			for _, s := range sessions {
				if !cond(s) {
					all = false
					break
				}
			}
			if all {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("loadtest: killed phase: %s: %w", what, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	// Warm: every client has the changes published so far.
	if err := every("clients had the first changes", time.Minute, func(s *killedSession) bool {
		p := now()
		return len(p) >= 3 && s.has(p)
	}); err != nil {
		return nil, err
	}

	killed := time.Now()
	if err := t.control(ctx, r.Name, "kill"); err != nil {
		return nil, err
	}
	if err := every("clients resumed in another region", time.Minute, func(s *killedSession) bool {
		h := s.c.Hello()
		return h.Region != r.Name && h.Resumed
	}); err != nil {
		return nil, err
	}
	k.ResumedMS = msOf(time.Since(killed))
	for _, s := range sessions {
		k.ServedIn[s.c.Hello().Region]++
	}
	then := now()
	if err := every("clients caught up after resuming", time.Minute, func(s *killedSession) bool { return s.has(then) }); err != nil {
		return nil, err
	}
	k.CaughtUpMS = msOf(time.Since(killed))

	started := time.Now()
	if err := t.control(ctx, r.Name, "start"); err != nil {
		return nil, err
	}
	if err := every("clients back home", 2*time.Minute, func(s *killedSession) bool { return s.c.Hello().Region == r.Name }); err != nil {
		return nil, err
	}
	k.HomeMS = msOf(time.Since(started))
	// A few more changes once home, then every client must have every one.
	more := len(now()) + 3
	if err := every("changes after the return", time.Minute, func(*killedSession) bool { return len(now()) >= more }); err != nil {
		return nil, err
	}
	stop()
	if pubErr != nil {
		return nil, fmt.Errorf("loadtest: killed phase: publishing: %w", pubErr)
	}
	final := now()
	k.Changes = len(final)
	rmu.Lock()
	k.Reconnects = maps.Clone(retries)
	rmu.Unlock()
	_ = every("clients had every change", 30*time.Second, func(s *killedSession) bool { return s.has(final) }) // what is missing then is lost
	for _, s := range sessions {
		s.mu.Lock()
		for _, q := range final {
			switch n := s.seen[q]; {
			case n == 0:
				k.Lost++
			case n > 1:
				k.Duplicates += int64(n - 1)
			}
		}
		s.mu.Unlock()
		k.Duplicates += s.c.Stats().Duplicates
	}
	return k, nil
}

// control asks the spawned `weft dev`'s control endpoint to kill or start region's edges.
func (t *Target) control(ctx context.Context, region, verb string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.stack.ControlURL+"/regions/"+region+"/"+verb, nil)
	if err != nil {
		return err
	}
	resp, err := t.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("loadtest: %s region %s: %w", verb, region, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadtest: %s region %s: %s: %s", verb, region, resp.Status, body)
	}
	return nil
}

// reconnectKind names why a connection or attempt ended: "goodbye moved", "HTTP 429", "lost".
func reconnectKind(r client.Reconnect) string {
	var ce *client.Error
	switch {
	case r.Goodbye != nil:
		return "goodbye " + r.Goodbye.Reason
	case errors.As(r.Err, &ce) && ce.Status != 0:
		return fmt.Sprintf("HTTP %d %s", ce.Status, ce.Code)
	default:
		return "connection lost or refused"
	}
}
