// Package index is the Quick Switcher: one team's autocomplete index over its users' and
// channels' names, ranked for the person typing, kept current by the team's events.
//
// The prefix path is a structure of our own (see dict.go): a sorted dictionary of the team's
// folded name words with a posting list per word, built in one pass from the cache's store.
// A query is a few binary searches plus a bounded walk, never a scan of the team. The caller's
// affinity (their channels, the people in their small channels) comes from the store's
// membership lists at query time, so the index keeps no copy of memberships. bleve, which
// is slow and memory-hungry as the primary index at this size, serves only the typo fallback
// (fuzzy.go), over the dictionary of distinct words rather than over every object, and is
// built in the background after the prefix path is ready.
package index

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
)

// ErrClosed is returned by searches on an index whose team was unloaded or reloaded.
var ErrClosed = errors.New("index: closed")

// Config tunes an index. Zero values mean the defaults given on each field.
type Config struct {
	// AffinityMaxMembers: sharing a channel bigger than this (or than half the team) does not
	// make two people close. Default 1,000.
	AffinityMaxMembers int
	// Recent is how many of the latest messages make their senders and channels "recently
	// active" (ranked above the inactive). Default 2,048.
	Recent int
	// NoFuzzy turns the typo-tolerant fallback off.
	NoFuzzy bool
	// AdmitFuzzy, when set, is asked before the fallback index is built; false skips the build
	// for now (the overload layer stops these builds under memory pressure) and it is asked
	// again on the next search that needs the fallback.
	AdmitFuzzy func() bool
	// FuzzyGate, when set, bounds the fallback builds that run at once: a build holds one of
	// its slots while it runs. A node passes one gate to every index it builds: when an edge
	// is lost, tens of its teams load here in the same second, and as many bleve builds at
	// once (each a CPU-heavy transient of tens of MiB) would take the CPU the sessions being
	// served need. Waiting builds start in turn; searches use the prefix path meanwhile.
	FuzzyGate chan struct{}
	// BuildGate is the same for the prefix path's builds: when tens of teams load at once, their
	// layouts (each spread over every core) would flood the node's run queues, and a session's
	// request would wait behind all of them. Searches of a team wait for its build as before.
	BuildGate chan struct{}
	// OnBuild is told how long each build took: the prefix path (fuzzy=false) and the fallback.
	OnBuild func(team string, fuzzy bool, took time.Duration)
	Logger  *slog.Logger
}

func (c *Config) defaults() {
	if c.AffinityMaxMembers <= 0 {
		c.AffinityMaxMembers = 1000
	}
	if c.Recent <= 0 {
		c.Recent = 2048
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Object ids: a user's is its dense index in the store, a channel's its index with chanBit set.
const chanBit = 1 << 31

// sep separates the fields (name, display name, real name) in an object's word list.
const sep = ^uint32(0)

const (
	fLive     = 1 << iota // exists: a known user, or a channel not deleted
	fInactive             // a deleted user or an archived channel
	fPrivate              // a private channel
)

type object struct {
	id, name, label string   // shown in results; id and name share the store's strings
	key             string   // folded label: the alphabetical tie-break
	words           []uint32 // term ids of each field, fields separated by sep
	last            int64    // seq of the latest message by (user) or in (channel) it
	flags           uint8
}

// Index is one team's autocomplete index. It is a cache.Follower: Teams creates one for every
// store it loads and feeds it each event after the store applied it. Safe for concurrent use.
type Index struct {
	team  string
	store *cache.Store
	cfg   Config

	nUsers atomic.Int64  // user slots, for the affinity limit (read before mu is taken)
	ready  chan struct{} // closed when the prefix path is built
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.RWMutex // guards everything below
	closed   bool
	building bool
	pending  []*origin.Event // events that arrived during the build
	seq      int64           // last event reflected
	users    []object        // by store user index
	chans    []object        // by store channel index
	usig     []uint64        // signatures (sigOf) of users, by store user index
	csig     []uint64        // and of channels
	dict     dict
	recent   recent
	fuzzy    *fuzzy
	built    time.Duration
}

// New returns the index of st and starts building it in the background: the team's load never
// waits for it, and searches wait for it (bounded by their context).
func New(st *cache.Store, cfg Config) *Index {
	cfg.defaults()
	x := &Index{team: st.ID(), store: st, cfg: cfg, ready: make(chan struct{}), building: true}
	x.recent.init(cfg.Recent)
	x.ctx, x.cancel = context.WithCancel(context.Background())
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		x.build()
	}()
	return x
}

// Follow is a cache.Config.Follow that gives every loaded team an index with cfg.
func Follow(cfg Config) func(st *cache.Store) cache.Follower {
	return func(st *cache.Store) cache.Follower { return New(st, cfg) }
}

// Ready is closed once the index can answer.
func (x *Index) Ready() <-chan struct{} { return x.ready }

// Close stops the builds and releases the index; searches after it fail with ErrClosed.
func (x *Index) Close() {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return
	}
	x.closed = true
	x.pending = nil
	x.mu.Unlock()
	x.cancel()
	x.wg.Wait()
	x.mu.Lock()
	f := x.fuzzy
	x.fuzzy = nil
	x.mu.Unlock()
	if f != nil {
		f.close()
	}
}

// raw is what the build copies out of the store under its lock: strings are shared, not copied.
type raw struct {
	oid                    uint32
	id, name, display, rnm string
	flags                  uint8
}

func userRaw(idx uint32, u *origin.User) raw {
	r := raw{oid: idx, id: u.ID, name: u.Name, display: u.DisplayName, rnm: u.RealName, flags: fLive}
	if u.Deleted {
		r.flags |= fInactive
	}
	return r
}

func channelRaw(idx uint32, c *origin.Channel, deleted bool) raw {
	r := raw{oid: idx | chanBit, id: c.ID, name: c.Name}
	if !deleted {
		r.flags |= fLive
	}
	if c.IsArchived {
		r.flags |= fInactive
	}
	if c.IsPrivate {
		r.flags |= fPrivate
	}
	return r
}

// label is what a person sees in the switcher: a user's real name, with the display name in
// front when it says something the real name does not ("Ace (John Smith)"); a channel's #name.
func (r *raw) label() string {
	if r.oid&chanBit != 0 {
		return "#" + r.name
	}
	switch {
	case r.rnm == "" && r.display == "":
		return r.name
	case r.rnm == "":
		return r.display
	case r.display == "" || abbreviates(r.display, r.rnm):
		return r.rnm
	}
	return r.display + " (" + r.rnm + ")"
}

// abbreviates reports whether every word of short starts a word of long ("Ana S." of "Ana
// Silva", "José" of "José Núñez"): then short adds nothing to a label showing long.
func abbreviates(short, long string) bool {
	lw := Words(long)
	for _, w := range Words(short) {
		if !slices.ContainsFunc(lw, func(l string) bool { return strings.HasPrefix(l, w) }) {
			return false
		}
	}
	return true
}

// build reads the store and lays out the prefix path, then applies the events that arrived
// meanwhile and opens the index; the fuzzy fallback follows on its own.
func (x *Index) build() {
	if gate := x.cfg.BuildGate; gate != nil {
		select {
		case gate <- struct{}{}:
			defer func() { <-gate }()
		case <-x.ctx.Done():
			return
		}
	}
	begin := time.Now()
	nu, nc := x.store.Counts()
	raws := make([]raw, 0, nu+nc)
	seq := x.store.EachObject(
		func(u cache.UserObject) { raws = append(raws, userRaw(u.Idx, u.User)) },
		func(c cache.ChannelObject) { raws = append(raws, channelRaw(c.Idx, c.Channel, c.Deleted)) })
	if x.ctx.Err() != nil {
		return
	}
	users, chans, d := layout(raws)
	took := time.Since(begin)

	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return
	}
	x.users, x.chans, x.dict, x.seq, x.built = users, chans, d, seq, took
	x.usig, x.csig = make([]uint64, len(users)), make([]uint64, len(chans))
	for i := range users {
		x.usig[i] = x.objSig(&users[i])
	}
	for i := range chans {
		x.csig[i] = x.objSig(&chans[i])
	}
	for _, ev := range x.pending {
		x.apply(ev)
	}
	x.nUsers.Store(int64(len(x.users)))
	x.pending, x.building = nil, false
	x.mu.Unlock()
	close(x.ready)
	x.cfg.Logger.Debug("autocomplete index built", "team", x.team, "took", took, "terms", len(d.terms))
	if x.cfg.OnBuild != nil {
		x.cfg.OnBuild(x.team, false, took)
	}
	x.tryFuzzy()
}

// tryFuzzy starts building the typo fallback unless it is built or building, turned off, or
// refused for now by AdmitFuzzy (asked again on the next search that needs it).
func (x *Index) tryFuzzy() {
	if x.cfg.NoFuzzy || (x.cfg.AdmitFuzzy != nil && !x.cfg.AdmitFuzzy()) {
		return
	}
	x.mu.Lock()
	if x.closed || x.fuzzy != nil {
		x.mu.Unlock()
		return
	}
	f, err := newFuzzy()
	if err != nil {
		x.mu.Unlock()
		x.cfg.Logger.Error("autocomplete: typo fallback unavailable", "team", x.team, "err", err)
		return
	}
	x.fuzzy = f
	terms := slices.Clone(x.dict.terms) // later terms reach f through f.add
	x.wg.Add(1)
	x.mu.Unlock()
	go func() {
		defer x.wg.Done()
		err := f.run(x.ctx, x.cfg.FuzzyGate, terms, func(took time.Duration) {
			x.cfg.Logger.Debug("autocomplete typo fallback built", "team", x.team, "took", took, "terms", len(terms))
			if x.cfg.OnBuild != nil {
				x.cfg.OnBuild(x.team, true, took)
			}
		})
		if err != nil && x.ctx.Err() == nil {
			x.cfg.Logger.Error("autocomplete: typo fallback failed", "team", x.team, "err", err)
		}
	}()
}

// FuzzyReady reports whether the typo fallback is built.
func (x *Index) FuzzyReady() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.fuzzy != nil && x.fuzzy.isReady()
}

// layout builds the objects and the dictionary from raw records. Folding and splitting, the
// bulk of the work, runs on every core; interning and the sorts follow.
func layout(raws []raw) (users, chans []object, d dict) {
	objs := make([]object, len(raws))
	words := make([][]string, len(raws)) // each object's fields' words, "" between fields
	var wg sync.WaitGroup
	workers := max(1, min(runtime.GOMAXPROCS(0), len(raws)/1024))
	for w := 0; w < workers; w++ {
		lo, hi := w*len(raws)/workers, (w+1)*len(raws)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []string
			for i := lo; i < hi; i++ {
				r := &raws[i]
				buf = buf[:0]
				for f, field := range [3]string{r.name, r.display, r.rnm} {
					if f > 0 {
						buf = append(buf, "")
					}
					buf = appendWords(buf, field)
				}
				words[i] = slices.Clone(buf)
				label := r.label()
				objs[i] = object{id: r.id, name: r.name, label: label, key: Fold(label), flags: r.flags}
			}
		}()
	}
	wg.Wait()

	tmp := make(map[string]uint32, 1<<14) // term → provisional id, in order of first sight
	var terms []string
	for i := range objs {
		ws := make([]uint32, len(words[i]))
		for k, w := range words[i] {
			if w == "" {
				ws[k] = sep
				continue
			}
			t, ok := tmp[w]
			if !ok {
				t = uint32(len(terms))
				tmp[w] = t
				terms = append(terms, w)
			}
			ws[k] = t
		}
		objs[i].words = ws
	}
	words = nil

	// Final ids in term order, so that a prefix is an id range.
	order := make([]uint32, len(terms))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(terms[a], terms[b]) })
	remap := make([]uint32, len(terms))
	d.terms = make([]string, len(terms))
	d.ids = make(map[string]uint32, len(terms))
	for final, prov := range order {
		remap[prov] = uint32(final)
		d.terms[final] = terms[prov]
		d.ids[terms[prov]] = uint32(final)
	}
	d.nMain = uint32(len(terms))

	// Objects in tie-break order, so that filling the lists in this order sorts them. The sort
	// runs over a compact copy of the keys: comparisons stay in cache.
	type ranked struct {
		key string
		oid uint32
		i   int32
	}
	rank := make([]ranked, len(objs))
	for i := range objs {
		rank[i] = ranked{objs[i].key, raws[i].oid, int32(i)}
	}
	slices.SortFunc(rank, func(a, b ranked) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmpUint32(a.oid, b.oid)
	})
	counts := make([]int32, len(terms)+1)
	for i := range objs {
		ws := objs[i].words
		for k, t := range ws {
			if t != sep {
				ws[k] = remap[t]
			}
		}
		forDistinct(ws, func(t uint32) { counts[t+1]++ })
	}
	d.cum = counts
	for i := 1; i < len(d.cum); i++ {
		d.cum[i] += d.cum[i-1]
	}
	arena := make([]uint32, d.cum[len(terms)])
	fill := slices.Clone(d.cum[:len(terms)])
	for _, r := range rank {
		forDistinct(objs[r.i].words, func(t uint32) {
			arena[fill[t]] = r.oid
			fill[t]++
		})
	}
	d.lists = make([][]uint32, len(terms))
	for t := range d.lists {
		d.lists[t] = arena[d.cum[t]:d.cum[t+1]:d.cum[t+1]]
	}

	for i := range raws {
		if oid := raws[i].oid; oid&chanBit != 0 {
			chans = put(chans, oid&^chanBit, objs[i])
		} else {
			users = put(users, oid, objs[i])
		}
	}
	return users, chans, d
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func put(s []object, i uint32, o object) []object {
	if int(i) >= len(s) {
		s = append(s, make([]object, int(i)+1-len(s))...)
	}
	s[i] = o
	return s
}

// forDistinct calls fn once for each distinct term id of a word list (lists are a few words).
func forDistinct(ws []uint32, fn func(uint32)) {
	for k, t := range ws {
		if t == sep || slices.Contains(ws[:k], t) {
			continue
		}
		fn(t)
	}
}

// compareObj is the tie-break order: folded label, then object id.
func compareObj(a *object, ao uint32, b *object, bo uint32) int {
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmpUint32(ao, bo)
}

// obj returns the object of oid, or nil when the index has none (a user only named by a
// membership, or one the store learned of after the index read it).
func (x *Index) obj(oid uint32) *object {
	if oid&chanBit != 0 {
		if i := oid &^ chanBit; int(i) < len(x.chans) {
			return &x.chans[i]
		}
		return nil
	}
	if int(oid) < len(x.users) {
		return &x.users[oid]
	}
	return nil
}

// cmpOID orders two object ids for the posting lists.
func (x *Index) cmpOID(a, b uint32) int { return compareObj(x.obj(a), a, x.obj(b), b) }

// Stats describes an index.
type Stats struct {
	Ready      bool
	FuzzyReady bool
	Objects    int
	Terms      int
	Bytes      int64         // estimate of the prefix path's memory
	FuzzyBytes int64         // estimate of the fallback's memory (bleve's own accounting)
	Built      time.Duration // how long the prefix path took to build
	Seq        int64
}

// Stats reports the index's size and state.
func (x *Index) Stats() Stats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s := Stats{Objects: len(x.users) + len(x.chans), Terms: len(x.dict.terms), Built: x.built, Seq: x.seq}
	select {
	case <-x.ready:
		s.Ready = true
	default:
	}
	s.Bytes = x.dict.bytes() + int64(cap(x.users)+cap(x.chans))*int64(unsafe.Sizeof(object{}))
	for _, objs := range [2][]object{x.users, x.chans} {
		for i := range objs {
			o := &objs[i]
			n := int64(cap(o.words)) * 4
			if o.key != o.label { // a key equal to its label shares its bytes
				n += int64(len(o.key))
			}
			if !strings.HasPrefix(o.label, o.name) || o.label != o.name {
				n += int64(len(o.label))
			}
			s.Bytes += n
		}
	}
	if x.fuzzy != nil {
		s.FuzzyReady, s.FuzzyBytes = x.fuzzy.stats()
	}
	return s
}

// Signatures screen candidates cheaply: bit (first byte of a word) and bit 32 + (hash of its
// first two bytes), over all of an object's words. Every word starting with a query word has
// the query word's bits, so an object lacking any bit of a query cannot match it. They live in
// arrays of their own (8 bytes an object) that stay in cache while a query screens thousands.
func sigOf(word string) uint64 {
	if word == "" {
		return 0
	}
	sig := uint64(1) << (word[0] & 31)
	if len(word) > 1 {
		sig |= uint64(1) << (32 + (uint(word[0])*31+uint(word[1]))&31)
	}
	return sig
}

// objSig is the signature of o's words. Caller holds mu.
func (x *Index) objSig(o *object) (sig uint64) {
	for _, t := range o.words {
		if t != sep {
			sig |= sigOf(x.dict.terms[t])
		}
	}
	return sig
}

// sigOK reports whether object oid has every bit of want (true for an object the signature
// arrays do not cover yet: the full check decides). Caller holds mu.
func (x *Index) sigOK(oid uint32, want uint64) bool {
	sigs := x.usig
	if oid&chanBit != 0 {
		sigs, oid = x.csig, oid&^chanBit
	}
	return int(oid) >= len(sigs) || sigs[oid]&want == want
}
