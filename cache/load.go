package cache

import (
	"context"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/pubsub"
)

// Origin is where a team's snapshot comes from; *origin.Client implements it.
type Origin interface {
	Team(ctx context.Context, team string) (*origin.TeamInfo, error)
	UsersPage(ctx context.Context, team, cursor string, limit int) (*origin.UsersPage, error)
	ChannelsPage(ctx context.Context, team, cursor string, limit int) (*origin.ChannelsPage, error)
	MembershipsPage(ctx context.Context, team, cursor string, limit int) (*origin.MembershipsPage, error)
	PageLimit() int
}

// Feed is the team event feed; *pubsub.Bus implements it.
type Feed interface {
	SubscribeTeam(team string, h pubsub.Handler) (*pubsub.TeamSub, error)
	// Connected reports whether the feed's transport (NATS) is up: new teams load only then.
	Connected() bool
}

// feedHandler applies one subscription's events to the store that subscription was made for.
// A reload makes a new subscription and a new handler, so a late event of the old one can
// never touch the new store.
type feedHandler struct {
	t     *Team
	store atomic.Pointer[Store] // set before the subscription starts delivering
}

func (h *feedHandler) Event(ev *origin.Event) {
	st := h.store.Load()
	if st == nil {
		return
	}
	ch, ok := st.ApplyEvent(ev)
	if !ok {
		return
	}
	if st.follower != nil {
		st.follower.Apply(ev, ch)
	}
	if h.t.Store() == st {
		h.t.ts.cfg.Hooks.event(h.t, ev, ch)
	}
}

func (h *feedHandler) Lost(err error) {
	h.t.ts.reloadLater(h.t, h, err)
}

// load builds team's store: subscribe first (the subscription buffers), read the origin's seq,
// then page through users, channels and memberships. The subscription is returned unstarted:
// the caller publishes the store as the team's (t.store) and only then starts it after the
// store's seq, so that every event newer than the snapshot is applied once, in order, and each
// reaches Hooks.OnEvent (which skips events of a store that is not the team's: started here,
// the events delivered before the store was published were applied but never fanned out).
// A failure at any step leaves nothing behind.
func (ts *Teams) load(ctx context.Context, t *Team) (*Store, *pubsub.TeamSub, *feedHandler, error) {
	h := &feedHandler{t: t}
	sub, err := ts.cfg.Feed.SubscribeTeam(t.id, h)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cache: subscribe %s: %w", t.id, err)
	}
	st, err := Snapshot(ctx, ts.cfg.Origin, t.id, ts.cfg.MaxMemberships)
	if err != nil {
		sub.Close()
		return nil, nil, nil, err
	}
	if ts.cfg.Follow != nil {
		st.follower = ts.cfg.Follow(st)
	}
	h.store.Store(st)
	return st, sub, h, nil
}

// Snapshot reads team from the origin into a new store that follows no feed: its seq is the
// origin's at the start of the read. Teams uses it for every load; tools and benchmarks use it
// alone. maxMemberships caps the membership rows (a listing that never ends is refused).
func Snapshot(ctx context.Context, o Origin, team string, maxMemberships int) (*Store, error) {
	info, err := o.Team(ctx, team)
	if err != nil {
		return nil, fmt.Errorf("cache: load %s: %w", team, err)
	}
	b := newBuilder(team)
	limit := o.PageLimit()
	// Users and channels may not exceed what the team says it has by much; memberships are
	// bounded by configuration. Either way a listing that never ends is cut off.
	maxUsers := max(2*info.Team.UserCount, info.Team.UserCount+100_000)
	maxChans := max(2*info.Team.ChannelCount, info.Team.ChannelCount+100_000)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return walk(gctx, "users", maxUsers, func(ctx context.Context, cursor string) (int, string, error) {
			p, err := o.UsersPage(ctx, team, cursor, limit)
			if err != nil {
				return 0, "", err
			}
			b.users(p.Users)
			return len(p.Users), p.NextCursor, nil
		})
	})
	g.Go(func() error {
		return walk(gctx, "channels", maxChans, func(ctx context.Context, cursor string) (int, string, error) {
			p, err := o.ChannelsPage(ctx, team, cursor, limit)
			if err != nil {
				return 0, "", err
			}
			b.channels(p.Channels)
			return len(p.Channels), p.NextCursor, nil
		})
	})
	g.Go(func() error {
		return walk(gctx, "memberships", maxMemberships, func(ctx context.Context, cursor string) (int, string, error) {
			p, err := o.MembershipsPage(ctx, team, cursor, limit)
			if err != nil {
				return 0, "", err
			}
			b.memberships(p.Memberships)
			return len(p.Memberships), p.NextCursor, nil
		})
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("cache: load %s: %w", team, err)
	}
	return b.finish(info.Team, info.Seq)
}

// walk follows a listing's cursors, refusing one that repeats a cursor, keeps sending empty
// pages, or runs past maxRows: an origin bug must not become an endless load.
func walk(ctx context.Context, what string, maxRows int, page func(context.Context, string) (int, string, error)) error {
	seen := make(map[string]struct{})
	cursor, rows, empty := "", 0, 0
	for {
		n, next, err := page(ctx, cursor)
		if err != nil {
			return err
		}
		rows += n
		switch {
		case rows > maxRows:
			return fmt.Errorf("%w: %s listing passed %d rows", origin.ErrBadResponse, what, maxRows)
		case next == "":
			return nil
		case n == 0:
			if empty++; empty > 3 {
				return fmt.Errorf("%w: %s listing keeps sending empty pages", origin.ErrBadResponse, what)
			}
		default:
			empty = 0
		}
		if _, dup := seen[next]; dup {
			return fmt.Errorf("%w: %s listing repeats cursor %q", origin.ErrBadResponse, what, next)
		}
		seen[next] = struct{}{}
		cursor = next
	}
}
