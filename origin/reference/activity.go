package reference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/origin"
)

// Mix weighs the kinds of live activity; only ratios matter. The zero Mix means DefaultMix.
type Mix struct {
	Messages     float64 // a member posts, mentioning 0–2 other users
	Profiles     float64 // a title or display name changes; rarely a (re)activation
	Memberships  float64 // someone joins or leaves a public channel
	ChannelEdits float64 // a channel is renamed or its topic changes
	Archives     float64 // a channel is archived or unarchived; rarely deleted
	Creations    float64 // a channel is created
	TeamChanges  float64 // the team is renamed
}

// DefaultMix is mostly messages, as in a real team.
var DefaultMix = Mix{Messages: 85, Profiles: 4, Memberships: 6, ChannelEdits: 3, Archives: 0.5,
	Creations: 1, TeamChanges: 0.5}

func (m Mix) weights() []float64 {
	return []float64{m.Messages, m.Profiles, m.Memberships, m.ChannelEdits, m.Archives, m.Creations, m.TeamChanges}
}

// ActivityConfig configures an Activity. The zero value of every field but Server is its default.
type ActivityConfig struct {
	// Server is the origin the activity changes. Required.
	Server *Server
	// Rate is the number of events per second over all teams. 0 means 10.
	Rate float64
	// Teams are the teams that get activity. nil means all of the server's teams.
	Teams []string
	// Seed seeds the choices, so a run on a fresh server is repeatable up to timing.
	Seed int64
	// Mix weighs the kinds of events. The zero Mix means DefaultMix.
	Mix Mix
	// Logger receives publish errors (at most one line a second). nil means the server's.
	Logger *slog.Logger
}

// Activity generates live changes on a Server at a steady rate: the traffic weft follows.
type Activity struct {
	cfg    ActivityConfig
	s      *Server
	teams  []*teamState
	cum    []float64 // cumulative mix weights
	events atomic.Int64
	errors atomic.Int64
}

// ActivityStats counts what an Activity did.
type ActivityStats struct {
	Events int64 // changes applied (published, or pending after a publish error)
	Errors int64 // changes that failed, publish errors included
}

// NewActivity validates cfg. It starts nothing: call Run.
func NewActivity(cfg ActivityConfig) (*Activity, error) {
	if cfg.Server == nil {
		return nil, errors.New("origin: ActivityConfig.Server is required")
	}
	if math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) || cfg.Rate < 0 {
		return nil, fmt.Errorf("origin: activity rate %v must be a finite number >= 0", cfg.Rate)
	}
	if cfg.Rate == 0 {
		cfg.Rate = 10
	}
	if cfg.Mix == (Mix{}) {
		cfg.Mix = DefaultMix
	}
	if cfg.Logger == nil {
		cfg.Logger = cfg.Server.log
	}
	a := &Activity{cfg: cfg, s: cfg.Server}
	total := 0.0
	for _, w := range cfg.Mix.weights() {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return nil, fmt.Errorf("origin: activity mix weight %v must be a finite number >= 0", w)
		}
		total += w
		a.cum = append(a.cum, total)
	}
	ids := cfg.Teams
	if ids == nil {
		ids = cfg.Server.TeamIDs()
	}
	if len(ids) == 0 {
		return nil, errors.New("origin: activity has no teams")
	}
	for _, id := range ids {
		st := cfg.Server.team(id)
		if st == nil {
			return nil, fmt.Errorf("origin: activity: unknown team %q", id)
		}
		a.teams = append(a.teams, st)
	}
	return a, nil
}

// Stats returns what the activity has done so far.
func (a *Activity) Stats() ActivityStats {
	return ActivityStats{Events: a.events.Load(), Errors: a.errors.Load()}
}

// Run generates events until ctx is done, then returns nil. It runs on the caller's goroutine
// and starts none. Events are paced by a ticker: each tick makes the events due since the
// start, so high rates need no sub-millisecond timers; after a stall (a slow bus) it does not
// try to catch up more than a second of events. A failed change is logged and the loop goes on.
// Run must not be called concurrently on one Activity.
func (a *Activity) Run(ctx context.Context) error {
	interval := max(time.Duration(float64(time.Second)/a.cfg.Rate), 5*time.Millisecond)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	r := newPRNG(a.cfg.Seed, kindTeam, 0, 0x5eed)
	start, done := time.Now(), int64(0)
	burst := int64(math.Ceil(a.cfg.Rate))
	var lastLog time.Time
	var quiet int
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-ticker.C:
			due := int64(now.Sub(start).Seconds() * a.cfg.Rate)
			done = max(done, due-burst)
			for ; done < due; done++ {
				if ctx.Err() != nil {
					return nil
				}
				err := a.step(ctx, &r)
				if err == nil {
					continue
				}
				if ctx.Err() != nil {
					return nil
				}
				if t := time.Now(); t.Sub(lastLog) >= time.Second {
					a.cfg.Logger.Warn("origin: activity change failed", "err", err, "suppressed", quiet)
					lastLog, quiet = t, 0
				} else {
					quiet++
				}
			}
		}
	}
}

// step makes one change. A choice that turns out invalid (the user picked was deactivated, the
// channel archived, …) is replaced by another, a few times, before giving up.
func (a *Activity) step(ctx context.Context, r *prng) error {
	st := a.teams[r.intn(len(a.teams))]
	x := r.float64() * a.cum[len(a.cum)-1]
	kind := 0
	for kind < len(a.cum)-1 && x >= a.cum[kind] {
		kind++
	}
	var ev *origin.Event
	var err error
	for range 8 {
		if ev, err = a.change(ctx, r, st, kind); !errors.Is(err, ErrBadChange) {
			break
		}
	}
	if errors.Is(err, ErrBadChange) {
		return nil // nothing valid found this time; not a failure
	}
	if ev != nil {
		a.events.Add(1) // applied; after a publish error the event is pending
	}
	if err != nil {
		a.errors.Add(1)
	}
	return err
}

func (a *Activity) change(ctx context.Context, r *prng, st *teamState, kind int) (*origin.Event, error) {
	s, team := a.s, st.id
	switch kind {
	case 0:
		user := a.activeUser(r, st)
		chans := s.ChannelsOf(team, user)
		channel := chans[r.intn(len(chans))]
		// Not Sprintf: some templates ("+1") have no verb, and a message must not read "%!(EXTRA".
		tmpl, name := pick(r, messageTemplates), pick(r, codenames)
		text := strings.Replace(tmpl, "%s", name, 1)
		var mentions []string
		for n := mentionCount(r); len(mentions) < n; {
			m := a.activeUser(r, st)
			if m == user {
				break
			}
			mentions = append(mentions, m)
			text = "<@" + m + "> " + text
		}
		return s.PostMessage(ctx, team, channel, user, text, mentions)
	case 1:
		user := userID(st.idx, r.intn(st.w.size.Users))
		roll, title, nick := r.float64(), pick(r, jobTitles), pick(r, nickNames)
		return s.UpdateUser(ctx, team, user, func(u *origin.User) {
			switch {
			case u.Deleted:
				u.Deleted = roll < 0.5 // reactivations balance deactivations
			case roll < 0.02:
				u.Deleted = true
			case roll < 0.5:
				u.Title = title
			default:
				u.DisplayName = nick
			}
		})
	case 2:
		user := a.activeUser(r, st)
		if r.chance(0.5) {
			channel := a.liveChannel(r, st)
			if ch, _ := s.Channel(team, channel); ch.IsPrivate {
				return nil, badChange("activity joins public channels only")
			}
			return s.JoinChannel(ctx, team, channel, user)
		}
		chans := s.ChannelsOf(team, user)
		return s.LeaveChannel(ctx, team, chans[r.intn(len(chans))], user)
	case 3:
		channel := a.liveChannel(r, st)
		topic, roll := pick(r, channelTopics), r.float64()
		base, _ := channelName(r.intn(channelNameCount))
		name := base + "-" + pick(r, codenames)
		return s.UpdateChannel(ctx, team, channel, func(c *origin.Channel) {
			if roll < 0.3 && c.Name != "general" {
				c.Name = name
			} else {
				c.Topic = topic
			}
		})
	case 4:
		channel := a.liveChannel(r, st)
		ch, _ := s.Channel(team, channel)
		if ch.IsArchived && r.chance(0.3) {
			return s.DeleteChannel(ctx, team, channel)
		}
		return s.UpdateChannel(ctx, team, channel, func(c *origin.Channel) { c.IsArchived = !c.IsArchived })
	case 5:
		base, _ := channelName(r.intn(channelNameCount))
		name := base + "-" + pick(r, codenames)
		return s.CreateChannel(ctx, team, name, a.activeUser(r, st), r.chance(privateShare))
	default:
		name := pick(r, teamAdjectives) + " " + pick(r, teamNouns) + " " + pick(r, teamKinds)
		return s.UpdateTeam(ctx, team, func(t *origin.Team) { t.Name = strings.TrimSpace(name) })
	}
}

// mentionCount is 0 (60%), 1 (30%) or 2 (10%).
func mentionCount(r *prng) int {
	switch x := r.float64(); {
	case x < 0.6:
		return 0
	case x < 0.9:
		return 1
	}
	return 2
}

// activeUser picks a user who is probably not deactivated; the change validates it anyway.
func (a *Activity) activeUser(r *prng, st *teamState) string {
	for try := 0; ; try++ {
		id := userID(st.idx, r.intn(st.w.size.Users))
		if u, _ := a.s.User(st.id, id); !u.Deleted || try == 5 {
			return id
		}
	}
}

// liveChannel picks a channel that is probably live (deleted ones are rare).
func (a *Activity) liveChannel(r *prng, st *teamState) string {
	st.mu.RLock()
	n := len(st.counts)
	st.mu.RUnlock()
	return channelID(st.idx, r.intn(n))
}
