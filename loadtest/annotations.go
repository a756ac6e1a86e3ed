package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/origin/reference"
)

// The annotations scenario: sessions of the Go client read a stream of messages and render
// each one (its sender, its mentions and its channel known), and the scenario measures what
// that cost. Run against edges in each annotation mode (weft --annotate jit|never|always) on
// the same seed, it compares just-in-time annotations with the two baselines on the same
// event stream.

// AnnotationConfig configures RunAnnotations. Zero values are the defaults given.
type AnnotationConfig struct {
	WSURL, OriginURL, OriginToken string
	HTTP                          *http.Client
	Team                          string
	// Token mints a client token for a user of Team.
	Token func(user string) (string, error)

	Sessions int     // connected sessions, each a random active user; default 1,000
	Messages int     // messages posted; default 3,000
	Rate     float64 // messages per second; default 300
	// Channels: the messages go to the channels with the most sessions in them, this many;
	// default 300. Regulars: in each, this many members post 90% of its messages (a team's
	// channels have their talkers), anyone else the rest; default 8. A third of the messages
	// mention one member.
	Channels, Regulars int
	Seed               uint64
	// FetchMissing makes every session ask users.info and channels.info for what its Store
	// lacks: what a client does when the edge attaches nothing.
	FetchMissing bool
}

// AnnotationFigures is what one run measured.
type AnnotationFigures struct {
	Sessions, Messages int
	Deliveries         int64 // messages delivered to sessions
	Unrenderable       int64 // deliveries a session could not render (nothing attached, nothing fetched)
	Annotated          int64 // objects attached to the deliveries
	BytesPerSession    float64
	FollowUps          int64 // users.info and channels.info requests
	// Render is the time from the origin's publish (the message's ts) to the session having
	// every object the message names: p50, p90, p99, max.
	Render [4]time.Duration
}

// FollowUpsPer1000 is follow-up requests per 1,000 delivered events.
func (f *AnnotationFigures) FollowUpsPer1000() float64 {
	if f.Deliveries == 0 {
		return 0
	}
	return float64(f.FollowUps) * 1000 / float64(f.Deliveries)
}

func (c *AnnotationConfig) defaults() error {
	if c.WSURL == "" || c.OriginURL == "" || c.Team == "" || c.Token == nil {
		return errors.New("loadtest: AnnotationConfig needs WSURL, OriginURL, Team and Token")
	}
	c.Sessions = cmp.Or(c.Sessions, 1000)
	c.Messages = cmp.Or(c.Messages, 3000)
	c.Rate = cmp.Or(c.Rate, 300)
	c.Channels = cmp.Or(c.Channels, 300)
	c.Regulars = cmp.Or(c.Regulars, 8)
	if c.HTTP == nil {
		c.HTTP = http.DefaultClient
	}
	return nil
}

// annotationPlan is the seeded workload: who connects and which messages are posted.
type annotationPlan struct {
	sessions []string
	posts    []reference.EventsRequest
	expected int64 // deliveries: per post, the sessions in its channel
}

func planAnnotations(ctx context.Context, cfg *AnnotationConfig) (*annotationPlan, error) {
	users, err := TeamUsers(ctx, cfg.HTTP, cfg.OriginURL, cfg.OriginToken, cfg.Team)
	if err != nil {
		return nil, err
	}
	chans, err := TeamChannels(ctx, cfg.HTTP, cfg.OriginURL, cfg.OriginToken, cfg.Team)
	if err != nil {
		return nil, err
	}
	ms, err := TeamMemberships(ctx, cfg.HTTP, cfg.OriginURL, cfg.OriginToken, cfg.Team)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0xa770))
	active := map[string]bool{}
	var ids []string
	for _, u := range users {
		if !u.Deleted {
			active[u.ID] = true
			ids = append(ids, u.ID)
		}
	}
	if len(ids) < cfg.Sessions {
		return nil, fmt.Errorf("loadtest: team %s has %d active users for %d sessions", cfg.Team, len(ids), cfg.Sessions)
	}
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	p := &annotationPlan{sessions: ids[:cfg.Sessions]}
	isSession := map[string]bool{}
	for _, u := range p.sessions {
		isSession[u] = true
	}
	open := map[string]bool{}
	for _, c := range chans {
		if !c.IsArchived {
			open[c.ID] = true
		}
	}
	members := map[string][]string{} // open channel → active members
	inSessions := map[string]int{}
	for _, m := range ms {
		if open[m.Channel] && active[m.User] {
			members[m.Channel] = append(members[m.Channel], m.User)
			if isSession[m.User] {
				inSessions[m.Channel]++
			}
		}
	}
	var busy []string
	for ch, n := range inSessions {
		if n > 0 && len(members[ch]) >= 2 {
			busy = append(busy, ch)
		}
	}
	slices.SortFunc(busy, func(a, b string) int { return cmp.Or(inSessions[b]-inSessions[a], strings.Compare(a, b)) })
	busy = busy[:min(len(busy), cfg.Channels)]
	if len(busy) == 0 {
		return nil, errors.New("loadtest: no channel has a session in it")
	}
	regulars := map[string][]string{}
	for _, ch := range busy {
		m := slices.Clone(members[ch])
		r.Shuffle(len(m), func(i, j int) { m[i], m[j] = m[j], m[i] })
		regulars[ch] = m[:min(len(m), cfg.Regulars)]
	}
	for i := range cfg.Messages {
		ch := busy[r.IntN(len(busy))]
		pool := regulars[ch]
		if r.IntN(10) == 0 {
			pool = members[ch]
		}
		from := pool[r.IntN(len(pool))]
		post := reference.EventsRequest{Type: "message", Channel: ch, User: from, Text: fmt.Sprintf("update %d", i)}
		if r.IntN(3) == 0 {
			if m := members[ch][r.IntN(len(members[ch]))]; m != from {
				post.Mentions = []string{m}
				post.Text += " cc <@" + m + ">"
			}
		}
		p.posts = append(p.posts, post)
		p.expected += int64(inSessions[ch])
	}
	return p, nil
}

// annotationSession is one connected session and what it measured.
type annotationSession struct {
	c          *client.Client
	bytesAtGo  int64
	deliveries int64
	unrender   int64
	annotated  int64
	followUps  int64
	render     []time.Duration
}

// RunAnnotations connects the sessions, posts the messages at the rate and waits until every
// session has rendered (or given up on) every message of its channels.
func RunAnnotations(ctx context.Context, cfg AnnotationConfig) (*AnnotationFigures, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	plan, err := planAnnotations(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	sess := make([]*annotationSession, len(plan.sessions))
	defer func() {
		var wg sync.WaitGroup
		for _, s := range sess {
			if s != nil && s.c != nil {
				wg.Go(func() { s.c.Close() })
			}
		}
		wg.Wait()
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, u := range plan.sessions {
		g.Go(func() error {
			tok, err := cfg.Token(u)
			if err != nil {
				return err
			}
			dctx, cancel := context.WithTimeout(gctx, 30*time.Second)
			defer cancel()
			c, err := client.Dial(dctx, client.Options{URL: cfg.WSURL, Token: tok, HTTPClient: cfg.HTTP})
			if err != nil {
				return fmt.Errorf("session %d (%s): %w", i, u, err)
			}
			sess[i] = &annotationSession{c: c}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	var processed atomic.Int64
	allDone := make(chan struct{})
	var once sync.Once
	var readers sync.WaitGroup
	rctx, stopReaders := context.WithCancel(ctx)
	defer func() { stopReaders(); readers.Wait() }()
	for _, s := range sess {
		s.bytesAtGo = s.c.Stats().BytesRead
		readers.Go(func() {
			s.read(rctx, cfg.FetchMissing, func() {
				if processed.Add(1) == plan.expected {
					once.Do(func() { close(allDone) })
				}
			})
		})
	}

	// Post at the rate, a tick's worth at a time.
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	for sent := 0; sent < len(plan.posts); {
		select {
		case <-tick.C:
		case <-ctx.Done():
			tick.Stop()
			return nil, ctx.Err()
		}
		due := min(int(time.Since(start).Seconds()*cfg.Rate), len(plan.posts))
		for ; sent < due; sent++ {
			if _, err := PostEvents(ctx, cfg.HTTP, cfg.OriginURL, cfg.OriginToken, cfg.Team, plan.posts[sent]); err != nil {
				tick.Stop()
				return nil, err
			}
		}
	}
	tick.Stop()
	if plan.expected > 0 {
		select {
		case <-allDone:
		case <-time.After(60 * time.Second):
			return nil, fmt.Errorf("loadtest: %d of %d deliveries processed 60s after the last post", processed.Load(), plan.expected)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	stopReaders()
	readers.Wait()

	f := &AnnotationFigures{Sessions: len(sess), Messages: len(plan.posts)}
	var all []time.Duration
	var bytes int64
	for _, s := range sess {
		f.Deliveries += s.deliveries
		f.Unrenderable += s.unrender
		f.Annotated += s.annotated
		f.FollowUps += s.followUps
		bytes += s.c.Stats().BytesRead - s.bytesAtGo
		all = append(all, s.render...)
	}
	f.BytesPerSession = float64(bytes) / float64(len(sess))
	slices.Sort(all)
	if n := len(all); n > 0 {
		for i, q := range []float64{0.5, 0.9, 0.99, 1} {
			f.Render[i] = all[min(int(q*float64(n)), n-1)]
		}
	}
	return f, nil
}

// read renders every message the session gets until ctx ends, calling done after each.
func (s *annotationSession) read(ctx context.Context, fetch bool, done func()) {
	st := s.c.Store()
	for {
		var ev *client.Event
		select {
		case ev = <-s.c.Events():
		case <-ctx.Done():
			return
		}
		if ev == nil {
			return
		}
		if ev.Type != client.EventMessage {
			continue
		}
		s.deliveries++
		s.annotated += int64(ev.Annotations.Len())
		if fetch && !st.Renderable(ev) {
			users, ch := st.Missing(ev)
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if len(users) > 0 {
				s.followUps++
				s.c.UsersInfo(rctx, users...)
			}
			if ch != "" {
				s.followUps++
				s.c.ChannelsInfo(rctx, ch)
			}
			cancel()
		}
		if st.Renderable(ev) {
			if ts, ok := parseTS(ev.TS); ok {
				s.render = append(s.render, time.Since(ts))
			}
		} else {
			s.unrender++
		}
		done()
	}
}

// parseTS reads a Slack-style "seconds.micros" ts.
func parseTS(ts string) (time.Time, bool) {
	sec, frac, ok := strings.Cut(ts, ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	us, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, false
	}
	return time.Unix(s, us*1000), true
}
