package index

import (
	"slices"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
)

// Events update the index in place: an object whose words or label changed leaves the posting
// lists of its old words and joins those of its new ones (a few list inserts), a message moves
// its sender and channel to the front of the recent ring. Memberships need nothing: affinity
// and private-channel visibility are read from the store at query time.
//
// The object is re-read from the store rather than taken from the event, so the index agrees
// with the cache even when the event was older than what the cache holds.

// Apply is cache.Follower's: it is called on the team's feed goroutine after the store applied
// ev. Events that arrive while the index is being built wait and are applied after the build.
func (x *Index) Apply(ev *origin.Event, _ cache.Change) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.closed:
	case x.building:
		x.pending = append(x.pending, ev)
	default:
		x.apply(ev)
	}
}

// apply applies one event. Caller holds mu for writing.
func (x *Index) apply(ev *origin.Event) {
	if ev.Seq <= x.seq {
		return // the build read a store that already had it
	}
	x.seq = ev.Seq
	switch ev.Type {
	case origin.EventUserChange:
		if ev.User == nil {
			return
		}
		if i, u, ok := x.store.UserAt(ev.User.ID); ok {
			x.upsert(userRaw(i, &u))
		}
	case origin.EventChannelCreated, origin.EventChannelChange, origin.EventChannelDeleted:
		id := ev.ChannelID
		if ev.Channel != nil {
			id = ev.Channel.ID
		}
		if i, c, deleted, ok := x.store.ChannelAt(id); ok {
			x.upsert(channelRaw(i, &c, deleted))
		}
	case origin.EventMessage:
		if i, _, ok := x.store.UserAt(ev.UserID); ok {
			x.touch(i, ev.Seq)
		}
		if i, _, _, ok := x.store.ChannelAt(ev.ChannelID); ok {
			x.touch(i|chanBit, ev.Seq)
		}
	}
}

// upsert puts r's object in the index, moving it between posting lists as its words change.
// Caller holds mu for writing.
func (x *Index) upsert(r raw) {
	var words []uint32
	var fresh []string // words the team had never had: the fallback learns them too
	for f, field := range [3]string{r.name, r.display, r.rnm} {
		if f > 0 {
			words = append(words, sep)
		}
		for _, w := range Words(field) {
			t, isNew := x.dict.intern(w)
			if isNew {
				fresh = append(fresh, w)
			}
			words = append(words, t)
		}
	}
	if len(fresh) > 0 && x.fuzzy != nil {
		x.fuzzy.add(fresh)
	}
	label := r.label()
	next := object{id: r.id, name: r.name, label: label, key: Fold(label), words: words, flags: r.flags}

	var cur *object
	if r.oid&chanBit != 0 {
		i := r.oid &^ chanBit
		if int(i) >= len(x.chans) {
			x.chans = append(x.chans, make([]object, int(i)+1-len(x.chans))...)
		}
		cur = &x.chans[i]
	} else {
		if int(r.oid) >= len(x.users) {
			x.users = append(x.users, make([]object, int(r.oid)+1-len(x.users))...)
			x.nUsers.Store(int64(len(x.users)))
		}
		cur = &x.users[r.oid]
	}
	next.last = cur.last
	x.setSig(r.oid, x.objSig(&next))
	if cur.key == next.key && slices.Equal(cur.words, next.words) {
		*cur = next // same place in every list: only the flags or the shown strings changed
		return
	}
	// Leave the old lists under the old key (the order they were inserted by), then join the
	// new ones under the new key.
	forDistinct(cur.words, func(t uint32) { x.dict.remove(t, r.oid, x.cmpOID) })
	*cur = next
	forDistinct(cur.words, func(t uint32) { x.dict.add(t, r.oid, x.cmpOID) })
}

// touch records activity on object oid at seq. Caller holds mu for writing.
func (x *Index) touch(oid uint32, seq int64) {
	o := x.obj(oid)
	if o == nil || o.flags&fLive == 0 {
		return
	}
	o.last = seq
	x.recent.push(oid, seq)
}

// recent is a ring of the latest activity (object, seq). An object is recently active while
// its latest entry is still in the ring.
type recent struct {
	oids []uint32
	seqs []int64
	next int
	full bool
}

func (r *recent) init(n int) {
	r.oids, r.seqs = make([]uint32, n), make([]int64, n)
}

func (r *recent) push(oid uint32, seq int64) {
	r.oids[r.next], r.seqs[r.next] = oid, seq
	r.next++
	if r.next == len(r.oids) {
		r.next, r.full = 0, true
	}
}

// floor is the oldest seq still in the ring: activity after it is recent, and activity at
// it when holdsFloor says the object's entry is still there.
func (r *recent) floor() int64 {
	if !r.full {
		return 1
	}
	return r.seqs[r.next]
}

// holdsFloor reports whether oid's entry at the floor seq is still in the ring. One message
// pushes two entries (sender, channel) with one seq, so the ring can wrap between them: the
// floor seq then still names a message whose other entry has left, and only the entries
// themselves say who is still recent. Called only for objects whose latest seq is the floor.
func (r *recent) holdsFloor(oid uint32) bool {
	if !r.full {
		return true
	}
	floor := r.seqs[r.next]
	for k := range len(r.oids) {
		i := (r.next + k) % len(r.oids)
		if r.seqs[i] != floor {
			return false
		}
		if r.oids[i] == oid {
			return true
		}
	}
	return false
}

// newest is the latest seq in the ring (0 when empty).
func (r *recent) newest() int64 {
	if !r.full && r.next == 0 {
		return 0
	}
	return r.seqs[(r.next+len(r.seqs)-1)%len(r.seqs)]
}

// each calls fn for ring entries from the newest back, until fn returns false.
func (r *recent) each(fn func(oid uint32, seq int64) bool) {
	n := r.next
	if r.full {
		n = len(r.oids)
	}
	for k := 1; k <= n; k++ {
		i := (r.next - k + len(r.oids)) % len(r.oids)
		if !fn(r.oids[i], r.seqs[i]) {
			return
		}
	}
}

// setSig records oid's signature. Caller holds mu for writing.
func (x *Index) setSig(oid uint32, sig uint64) {
	sigs := &x.usig
	if oid&chanBit != 0 {
		sigs, oid = &x.csig, oid&^chanBit
	}
	if int(oid) >= len(*sigs) {
		*sigs = append(*sigs, make([]uint64, int(oid)+1-len(*sigs))...)
	}
	(*sigs)[oid] = sig
}
