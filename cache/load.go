package cache

import (
	"context"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/pubsub"
)

// Origin is where a team's snapshot comes from; *origin.Client implements it. Each List method
// is one request of a listing, in any of the contract's forms (origin.ListRequest: a page, a
// stream of pages, a partition), handing its pages over as they come.
type Origin interface {
	Team(ctx context.Context, team string) (*origin.TeamInfo, error)
	ListUsers(ctx context.Context, team string, r origin.ListRequest, page func(*origin.UsersPage) error) error
	ListChannels(ctx context.Context, team string, r origin.ListRequest, page func(*origin.ChannelsPage) error) error
	ListMemberships(ctx context.Context, team string, r origin.ListRequest, page func(*origin.MembershipsPage) error) error
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

// maxParallelParts bounds the listing requests one load has in flight: the partitions of the
// three listings (each one request at a time) past it wait for a slot.
const maxParallelParts = 32

// Snapshot reads team from the origin into a new store that follows no feed: its seq is the
// origin's at the start of the read. Teams uses it for every load; tools and benchmarks use it
// alone. maxMemberships caps the membership rows (a listing that never ends is refused).
//
// The three listings are read at the same time, in the form the team answer announces
// (docs/origin.md, "Fewer round trips"): each partition of each listing is walked on its own,
// streamed when the origin streams. Without an announcement, each listing is one walk of a
// page per request, the first contract.
func Snapshot(ctx context.Context, o Origin, team string, maxMemberships int) (*Store, error) {
	info, err := o.Team(ctx, team)
	if err != nil {
		return nil, fmt.Errorf("cache: load %s: %w", team, err)
	}
	forms := info.Listings
	b := newBuilder(team, forms != nil)
	limit := o.PageLimit()
	// Users and channels may not exceed what the team says it has by much; memberships are
	// bounded by configuration. Either way a listing that never ends is cut off.
	maxUsers := max(2*info.Team.UserCount, info.Team.UserCount+100_000)
	maxChans := max(2*info.Team.ChannelCount, info.Team.ChannelCount+100_000)
	var parts origin.ListingPartitions
	if forms != nil {
		parts = forms.Partitions
	}
	listings := []struct {
		l     *listing
		parts int
		fetch fetchFunc
	}{
		{&listing{what: "users", maxRows: int64(maxUsers)}, parts.Users,
			func(ctx context.Context, r origin.ListRequest, step stepFunc) error {
				return o.ListUsers(ctx, team, r, func(p *origin.UsersPage) error {
					if err := step(len(p.Users), p.NextCursor); err != nil {
						return err
					}
					return b.users(p.Users)
				})
			}},
		{&listing{what: "channels", maxRows: int64(maxChans)}, parts.Channels,
			func(ctx context.Context, r origin.ListRequest, step stepFunc) error {
				return o.ListChannels(ctx, team, r, func(p *origin.ChannelsPage) error {
					if err := step(len(p.Channels), p.NextCursor); err != nil {
						return err
					}
					return b.channels(p.Channels)
				})
			}},
		{&listing{what: "memberships", maxRows: int64(maxMemberships)}, parts.Memberships,
			func(ctx context.Context, r origin.ListRequest, step stepFunc) error {
				return o.ListMemberships(ctx, team, r, func(p *origin.MembershipsPage) error {
					if err := step(len(p.Memberships), p.NextCursor); err != nil {
						return err
					}
					b.memberships(p.Memberships)
					return nil
				})
			}},
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelParts)
	for _, l := range listings {
		n := max(l.parts, 1)
		for i := range n {
			r := origin.ListRequest{Limit: limit, Stream: forms != nil && forms.Stream}
			if n > 1 {
				r.Partition, r.Partitions = i, n
			}
			g.Go(func() error { return l.l.walk(gctx, r, l.fetch) })
		}
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("cache: load %s: %w", team, err)
	}
	st, err := b.finish(info.Team, info.Seq)
	if err != nil {
		return nil, fmt.Errorf("cache: load %s: %w", team, err)
	}
	return st, nil
}

// stepFunc checks one page of a walk (its row count and next cursor) before its rows are used.
type stepFunc func(n int, next string) error

// fetchFunc makes one listing request r, passing each page through step, then using its rows.
type fetchFunc func(ctx context.Context, r origin.ListRequest, step stepFunc) error

// listing is one listing of a load; its partitions share the row bound.
type listing struct {
	what    string
	maxRows int64
	rows    atomic.Int64
}

// walk follows one partition of l (or the whole of it) from the start to its last page,
// refusing one that repeats a cursor, keeps sending empty pages, or runs the listing past its
// row bound: an origin bug must not become an endless load. Each request goes on from the
// last cursor received; that is also how a stream the origin ended early continues, and how one
// that broke after delivering pages resumes instead of failing the load (a request that
// delivered nothing and failed fails the load, as every failed page of the first contract
// does: Teams retries loads, and the breaker sees the failure).
func (l *listing) walk(ctx context.Context, r origin.ListRequest, fetch fetchFunc) error {
	what := l.what + " listing"
	if r.Partitions > 1 {
		what = fmt.Sprintf("%s listing, partition %d of %d,", l.what, r.Partition, r.Partitions)
	}
	seen := make(map[string]struct{})
	empty := 0
	for {
		pages, done := 0, false
		err := fetch(ctx, r, func(n int, next string) error {
			pages++
			if l.rows.Add(int64(n)) > l.maxRows {
				return fmt.Errorf("%w: %s listing passed %d rows", origin.ErrBadResponse, l.what, l.maxRows)
			}
			switch {
			case next == "":
				done = true
				return nil
			case n == 0:
				if empty++; empty > 3 {
					return fmt.Errorf("%w: %s keeps sending empty pages", origin.ErrBadResponse, what)
				}
			default:
				empty = 0
			}
			if _, dup := seen[next]; dup {
				return fmt.Errorf("%w: %s repeats cursor %q", origin.ErrBadResponse, what, next)
			}
			seen[next] = struct{}{}
			r.Cursor = next
			return nil
		})
		switch {
		case done || (err != nil && !(pages > 0 && origin.IsFailure(err) && ctx.Err() == nil)):
			return err
		case pages == 0: // the client never answers nil without a page; a fake might
			return fmt.Errorf("%w: %s: an answer without a page", origin.ErrBadResponse, what)
		}
	}
}
