package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/pubsub"
)

// ErrClosed is returned by Teams after Shutdown.
var ErrClosed = errors.New("cache: shut down")

// ErrNoFeed refuses a new team load while the feed is down (NATS unreachable). Loaded teams
// keep being served from their stores and catch up when it returns; a new one is not loaded
// meanwhile, because nothing could keep it current or tell how far behind it is, and because
// during an outage the ring the proxies route by may be stale, so this node may no longer be
// the team's owner. The edge answers it with overloaded and a retry_after_ms.
var ErrNoFeed = errors.New("cache: the event feed is down (NATS unreachable): new teams cannot load now")

// Hooks are told about a team's life. Every field is optional. Hooks run on the goroutine that
// caused them (OnEvent on the team's feed goroutine, in seq order) and must not block.
type Hooks struct {
	// OnEvent is called after ev was applied to t's store.
	OnEvent func(t *Team, ev *origin.Event, ch Change)
	// OnLoad is called after every load attempt, with its duration and error.
	OnLoad func(team string, took time.Duration, err error)
	// OnReload is called when t lost events it could not recover and was rebuilt from the
	// origin: anything that followed its events (sessions) may have missed some.
	OnReload func(t *Team)
	// OnUnload is called after t was unloaded.
	OnUnload func(t *Team)
}

func (h *Hooks) event(t *Team, ev *origin.Event, ch Change) {
	if h.OnEvent != nil {
		h.OnEvent(t, ev, ch)
	}
}

// Config configures a Teams set. Zero values mean the defaults given on each field.
type Config struct {
	Origin Origin // required
	Feed   Feed   // required
	Logger *slog.Logger
	Hooks  Hooks
	// Grace is how long a team with no users stays loaded; default 5m.
	Grace time.Duration
	// Prewarm lists teams loaded at Start and kept loaded (never unloaded for idleness).
	Prewarm []string
	// LoadTimeout bounds one load; default 2m.
	LoadTimeout time.Duration
	// MaxMemberships caps the membership rows of one team's snapshot; default 50M.
	MaxMemberships int
	// JanitorInterval is how often idle teams are looked for; default Grace/10, at least 1s.
	JanitorInterval time.Duration
	// AdmitLoad, when set, is asked before a new load starts; an error refuses the load (the
	// overload layer uses it to stop loading under memory pressure).
	AdmitLoad func(team string) error
	// Follow, when set, is called with every store a load builds, before its first event; the
	// follower it returns sees each event after the store (see Follower). The autocomplete
	// index is one.
	Follow func(st *Store) Follower
}

// Teams is the set of loaded teams of one edge node: it loads a team on first demand (one load
// shared by every concurrent asker), follows its events, reloads it when its feed lost events,
// and unloads it after a grace period without users.
//
// The set is a sync.Map: finding a loaded team takes no lock, so one team's load or event
// never makes another team's readers wait.
type Teams struct {
	cfg    Config
	log    *slog.Logger
	teams  sync.Map // team ID → *entry
	pinned map[string]bool

	ctx    context.Context // cancelled by Shutdown; parent of loads and reloads
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Teams starts
	closed atomic.Bool
	start  sync.Once

	loads   atomic.Int64
	reloads atomic.Int64
}

// entry is one team's slot: done is closed when the first load ended, with team or err set.
type entry struct {
	done chan struct{}
	team *Team
	err  error
}

// New validates cfg. It starts nothing; Start does.
func New(cfg Config) (*Teams, error) {
	if cfg.Origin == nil || cfg.Feed == nil {
		return nil, errors.New("cache: Config needs Origin and Feed")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Minute
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 2 * time.Minute
	}
	if cfg.MaxMemberships <= 0 {
		cfg.MaxMemberships = 50_000_000
	}
	if cfg.JanitorInterval <= 0 {
		cfg.JanitorInterval = max(cfg.Grace/10, time.Second)
	}
	ts := &Teams{cfg: cfg, log: cfg.Logger, pinned: make(map[string]bool)}
	for _, id := range cfg.Prewarm {
		ts.pinned[id] = true
	}
	ts.ctx, ts.cancel = context.WithCancel(context.Background())
	return ts, nil
}

// Start launches the janitor and the pre-warm loads. It returns at once.
func (ts *Teams) Start() {
	ts.start.Do(func() {
		ts.goOwned(ts.janitor)
		for _, id := range ts.cfg.Prewarm {
			ts.entryFor(id)
		}
	})
}

func (ts *Teams) goOwned(fn func()) {
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		fn()
	}()
}

// Acquire returns team, loading it if needed, and counts the caller as a user of it until
// Release. Concurrent first calls share one load. ctx bounds the wait, not the load.
func (ts *Teams) Acquire(ctx context.Context, team string) (*Team, error) {
	for {
		t, err := ts.wait(ctx, team)
		if err != nil {
			return nil, err
		}
		if t.acquire() {
			return t, nil
		}
		// Unloaded between the lookup and now: its entry is gone, look again.
	}
}

// Get returns team, loading it if needed, without holding it: the team stays loaded for the
// grace period after this use (the /api path).
func (ts *Teams) Get(ctx context.Context, team string) (*Team, error) {
	t, err := ts.wait(ctx, team)
	if err != nil {
		return nil, err
	}
	t.touch()
	return t, nil
}

// Lookup returns team if it is loaded, without loading it.
func (ts *Teams) Lookup(team string) *Team {
	v, ok := ts.teams.Load(team)
	if !ok {
		return nil
	}
	e := v.(*entry)
	select {
	case <-e.done:
		return e.team
	default:
		return nil
	}
}

func (ts *Teams) wait(ctx context.Context, team string) (*Team, error) {
	if ts.closed.Load() {
		return nil, ErrClosed
	}
	e, err := ts.entryFor(team)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.done:
		if e.err != nil {
			return nil, e.err
		}
		return e.team, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// entryFor returns team's entry, creating it and starting its load when there is none.
func (ts *Teams) entryFor(team string) (*entry, error) {
	if v, ok := ts.teams.Load(team); ok {
		return v.(*entry), nil
	}
	if ts.cfg.AdmitLoad != nil {
		if err := ts.cfg.AdmitLoad(team); err != nil {
			return nil, err
		}
	}
	if !ts.cfg.Feed.Connected() {
		return nil, ErrNoFeed
	}
	e := &entry{done: make(chan struct{})}
	if v, loaded := ts.teams.LoadOrStore(team, e); loaded {
		return v.(*entry), nil
	}
	t := &Team{id: team, ts: ts, pinned: ts.pinned[team]}
	ts.goOwned(func() { ts.firstLoad(e, t) })
	return e, nil
}

func (ts *Teams) firstLoad(e *entry, t *Team) {
	ctx, cancel := context.WithTimeout(ts.ctx, ts.cfg.LoadTimeout)
	defer cancel()
	begin := time.Now()
	st, sub, _, err := ts.load(ctx, t)
	took := time.Since(begin)
	ts.loads.Add(1)
	if ts.cfg.Hooks.OnLoad != nil {
		ts.cfg.Hooks.OnLoad(t.id, took, err)
	}
	if err != nil {
		ts.log.Warn("team load failed", "team", t.id, "took", took, "err", err)
		e.err = err
		ts.teams.CompareAndDelete(t.id, e) // the next asker tries again
		close(e.done)
		return
	}
	t.store.Store(st)
	t.sub = sub
	sub.Start(st.Seq()) // the store is the team's now: what it applies reaches the hooks
	t.loadedAt, t.loadTook = time.Now(), took
	t.touch()
	ts.log.Info("team loaded", "team", t.id, "took", took, "seq", st.Seq())
	e.team = t
	close(e.done)
	if ts.closed.Load() { // Shutdown raced with the load: do not leave a subscription behind
		t.close()
	}
}

// reloadLater rebuilds t after its feed (handler h) lost events, on a goroutine of its own,
// retrying with backoff while the origin fails. The old store serves until the new one is in.
func (ts *Teams) reloadLater(t *Team, h *feedHandler, cause error) {
	ts.log.Warn("team feed lost events; reloading", "team", t.id, "err", cause)
	ts.goOwned(func() {
		backoff := 100 * time.Millisecond
		for {
			if t.isClosed() || ts.ctx.Err() != nil {
				return
			}
			ctx, cancel := context.WithTimeout(ts.ctx, ts.cfg.LoadTimeout)
			begin := time.Now()
			st, sub, _, err := ts.load(ctx, t)
			cancel()
			if ts.cfg.Hooks.OnLoad != nil {
				ts.cfg.Hooks.OnLoad(t.id, time.Since(begin), err)
			}
			if err == nil {
				retire, ok := t.swap(st, sub)
				if !ok {
					sub.Close()
					st.closeFollower()
					return
				}
				ts.reloads.Add(1)
				if ts.cfg.Hooks.OnReload != nil {
					ts.cfg.Hooks.OnReload(t)
				}
				// Started once the new store is the team's and OnReload has seen its seq: the
				// events after the snapshot then reach the hooks in order, after the reload.
				sub.Start(st.Seq())
				retire()
				return
			}
			ts.log.Warn("team reload failed", "team", t.id, "err", err)
			select {
			case <-ts.ctx.Done():
				return
			case <-time.After(backoff + rand.N(backoff)):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	})
}

// janitor unloads teams that have had no users for the grace period.
func (ts *Teams) janitor() {
	tick := time.NewTicker(ts.cfg.JanitorInterval)
	defer tick.Stop()
	for {
		select {
		case <-ts.ctx.Done():
			return
		case <-tick.C:
			ts.unloadIdle(time.Now().Add(-ts.cfg.Grace))
		}
	}
}

// unloadIdle unloads every unpinned team with no users that was last used before cutoff.
func (ts *Teams) unloadIdle(cutoff time.Time) int {
	n := 0
	for _, t := range ts.loaded() {
		if !t.pinned && time.Unix(0, t.used.Load()).Before(cutoff) && ts.Unload(t.id) {
			n++
		}
	}
	return n
}

// UnloadLRU unloads up to n idle, unpinned teams, least recently used first, for memory
// pressure; it returns how many it unloaded.
func (ts *Teams) UnloadLRU(n int) int {
	ts2 := ts.loaded()
	sort.Slice(ts2, func(i, j int) bool { return ts2[i].used.Load() < ts2[j].used.Load() })
	done := 0
	for _, t := range ts2 {
		if done == n {
			break
		}
		if !t.pinned && ts.Unload(t.id) {
			done++
		}
	}
	return done
}

// Unload unloads team if it has no users; it reports whether it did.
func (ts *Teams) Unload(team string) bool {
	v, ok := ts.teams.Load(team)
	if !ok {
		return false
	}
	e := v.(*entry)
	select {
	case <-e.done:
	default:
		return false // still loading
	}
	if e.team == nil || !e.team.refs.CompareAndSwap(0, -1) {
		return false
	}
	ts.teams.CompareAndDelete(team, e)
	e.team.close()
	ts.log.Info("team unloaded", "team", team)
	if ts.cfg.Hooks.OnUnload != nil {
		ts.cfg.Hooks.OnUnload(e.team)
	}
	return true
}

func (ts *Teams) loaded() []*Team {
	var out []*Team
	ts.teams.Range(func(_, v any) bool {
		e := v.(*entry)
		select {
		case <-e.done:
			if e.team != nil {
				out = append(out, e.team)
			}
		default: // still loading
		}
		return true
	})
	return out
}

// TeamStats describes one loaded team.
type TeamStats struct {
	ID       string
	Users    int
	Channels int
	Seq      int64
	Bytes    int64 // estimate of the memory the team's store holds
	Refs     int64
	Pinned   bool
	LoadTook time.Duration
	LastUsed time.Time
}

// Stats lists the loaded teams.
func (ts *Teams) Stats() []TeamStats {
	var out []TeamStats
	for _, t := range ts.loaded() {
		st := t.Store()
		u, c := st.Counts()
		out = append(out, TeamStats{ID: t.id, Users: u, Channels: c, Seq: st.Seq(), Bytes: st.Bytes(),
			Refs: max(t.refs.Load(), 0), Pinned: t.pinned, LoadTook: t.loadTook, LastUsed: time.Unix(0, t.used.Load())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Loads counts first loads attempted (successful or not); Reloads counts completed reloads.
func (ts *Teams) Loads() int64   { return ts.loads.Load() }
func (ts *Teams) Reloads() int64 { return ts.reloads.Load() }

// Shutdown stops loading, closes every team's subscription and waits for every goroutine the
// set started. It is idempotent.
func (ts *Teams) Shutdown(ctx context.Context) error {
	ts.closed.Store(true)
	ts.cancel()
	for _, t := range ts.loaded() {
		t.close()
	}
	done := make(chan struct{})
	go func() {
		ts.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// A caller whose deadline went on earlier steps still gets a set that stops at once
		// (every goroutine was told above), not an error for a waiter not yet scheduled.
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-done:
			return nil
		case <-t.C:
			return fmt.Errorf("cache: shutdown: %w", ctx.Err())
		}
	}
}

// shutdownGrace is how long Shutdown still waits for the set's goroutines once its context
// has ended.
const shutdownGrace = time.Second

// Team is a loaded team: a handle that stays valid across reloads (its Store may change).
type Team struct {
	id     string
	ts     *Teams
	pinned bool
	store  atomic.Pointer[Store]
	refs   atomic.Int64 // users holding the team; -1 once unloaded
	used   atomic.Int64 // unix nanos of the last use

	loadedAt time.Time // written before the team is published, read-only after
	loadTook time.Duration

	mu     sync.Mutex // guards sub and closed
	sub    *pubsub.TeamSub
	closed bool
}

// ID is the team ID.
func (t *Team) ID() string { return t.id }

// Store is the team's current store. Hold on to it only for one request: a reload swaps it.
func (t *Team) Store() *Store { return t.store.Load() }

// Release ends a use started by Acquire.
func (t *Team) Release() {
	t.touch()
	t.refs.Add(-1)
}

// Refs is the number of current users.
func (t *Team) Refs() int64 { return max(t.refs.Load(), 0) }

func (t *Team) touch() { t.used.Store(time.Now().UnixNano()) }

func (t *Team) acquire() bool {
	for {
		n := t.refs.Load()
		if n < 0 {
			return false
		}
		if t.refs.CompareAndSwap(n, n+1) {
			t.touch()
			return true
		}
	}
}

func (t *Team) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// swap installs a reloaded store and its subscription, and returns a function that retires
// the old ones; false if the team was closed meanwhile. Retiring waits for the old
// subscription's delivery goroutine (which may be inside a hook), so the caller starts the new
// subscription first: its events are not held back by the old one's last call.
func (t *Team) swap(st *Store, sub *pubsub.TeamSub) (retire func(), ok bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false
	}
	old, oldStore := t.sub, t.store.Load()
	t.sub = sub
	t.store.Store(st)
	t.mu.Unlock()
	return func() {
		if old != nil {
			old.Close()
		}
		oldStore.closeFollower()
	}, true
}

func (t *Team) close() {
	t.mu.Lock()
	sub := t.sub
	t.sub, t.closed = nil, true
	t.mu.Unlock()
	if sub != nil {
		sub.Close()
	}
	t.Store().closeFollower()
}

// IDs lists the loaded teams' IDs.
func (ts *Teams) IDs() []string {
	var out []string
	for _, t := range ts.loaded() {
		out = append(out, t.id)
	}
	return out
}

// Len is the number of loaded teams.
func (ts *Teams) Len() int { return len(ts.loaded()) }
