package index_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/index"
)

// The brute-force reference of TestDifferential: written from the ranking rules alone.

// ---- the recent ring, as the rules define it ----

type diffRing struct {
	ids  []string
	seqs []int64
	next int
	full bool
}

func newDiffRing(n int) *diffRing { return &diffRing{ids: make([]string, n), seqs: make([]int64, n)} }

func (r *diffRing) push(id string, seq int64) {
	r.ids[r.next], r.seqs[r.next] = id, seq
	if r.next++; r.next == len(r.ids) {
		r.next, r.full = 0, true
	}
}

// evictedAtFloor returns the sender or channel of the oldest message still in the ring whose
// own entry has already left it (its other entry is the floor), or "".
func (r *diffRing) evictedAtFloor(msgs map[int64][2]string) string {
	if !r.full {
		return ""
	}
	floor := r.seqs[r.next]
	for _, id := range msgs[floor] {
		in := false
		for i, seq := range r.seqs {
			in = in || (seq == floor && r.ids[i] == id)
		}
		if !in {
			return id
		}
	}
	return ""
}

// recency of object id whose latest message is at seq last (0: none, or its entry has left
// the ring, even when the message's other entry is still there).
func (r *diffRing) recency(id string, last int64) int64 {
	if last <= 0 {
		return 0
	}
	for i, seq := range r.seqs {
		if seq == last && r.ids[i] == id {
			return last
		}
	}
	return 0
}

// ---- the reference's view of the store ----

type refObj struct {
	ch                         bool
	idx                        int32
	id, name, display, realNm  string // display and realNm: users only
	label, key                 string
	words                      []string // distinct words of every field
	deleted, archived, private bool     // deleted: user deactivated or channel deleted
	stamp                      int      // == refState.gen: already a candidate of this query
}

type objRef struct {
	typ, id string // typ as in Result.Type
}

type refState struct {
	users, chans []refObj
	byID         map[objRef]*refObj
	userIdx      map[string]int32
	affMax       int
	terms        []string             // every distinct word of every object, sorted
	holders      map[string][]*refObj // word → the objects that have it
	gen          int

	// Memberships are read from the store when a query first needs them, once per round.
	st        *cache.Store
	t         *testing.T
	memberIDs map[int32][]string // channel → its members' IDs
	members   map[int32][]int32  // channel → its members, for channels up to affMax members
	chansOf   map[string][]int32 // user ID → the channels they are in, deleted ones too
}

// snapshot reads the store's current state: every object now, memberships as queries need them.
// Objects whose names did not change since prev keep their words.
func (d *diffRun) snapshot(prev *refState) *refState {
	t := d.t
	s := &refState{byID: make(map[objRef]*refObj), userIdx: make(map[string]int32), st: d.st, t: t,
		memberIDs: make(map[int32][]string), members: make(map[int32][]int32), chansOf: make(map[string][]int32)}
	d.st.EachObject(func(u cache.UserObject) {
		if int(u.Idx) != len(s.users) {
			panic(fmt.Sprintf("user index %d out of order (have %d)", u.Idx, len(s.users)))
		}
		o := refObj{idx: int32(u.Idx), id: u.User.ID, name: u.User.Name, display: u.User.DisplayName,
			realNm: u.User.RealName, deleted: u.User.Deleted}
		s.users = append(s.users, o)
	}, func(c cache.ChannelObject) {
		if int(c.Idx) != len(s.chans) {
			panic(fmt.Sprintf("channel index %d out of order (have %d)", c.Idx, len(s.chans)))
		}
		o := refObj{ch: true, idx: int32(c.Idx), id: c.Channel.ID, name: c.Channel.Name,
			deleted: c.Deleted, archived: c.Channel.IsArchived, private: c.Channel.IsPrivate}
		s.chans = append(s.chans, o)
	})
	for i := range s.users {
		o := &s.users[i]
		if prev != nil && i < len(prev.users) && prev.users[i].name == o.name &&
			prev.users[i].display == o.display && prev.users[i].realNm == o.realNm {
			o.words, o.label, o.key = prev.users[i].words, prev.users[i].label, prev.users[i].key
		} else {
			o.words = distinct(slices.Concat(index.Words(o.name), index.Words(o.display), index.Words(o.realNm)))
			o.label = refUserLabel(o.name, o.display, o.realNm)
			o.key = index.Fold(o.label)
		}
		s.byID[objRef{"user", o.id}] = o
		s.userIdx[o.id] = int32(i)
		if i > 0 && s.users[i-1].id >= o.id {
			t.Fatalf("user IDs not in store order: %s before %s", s.users[i-1].id, o.id)
		}
	}
	for i := range s.chans {
		o := &s.chans[i]
		o.words = distinct(index.Words(o.name))
		o.label = "#" + o.name
		o.key = index.Fold(o.label)
		s.byID[objRef{"channel", o.id}] = o
		if i > 0 && s.chans[i-1].id >= o.id {
			t.Fatalf("channel IDs not in store order: %s before %s", s.chans[i-1].id, o.id)
		}
	}
	// Every user of the world is in the store: the user slots are the users.
	s.affMax = min(1000, max(2, len(s.users)/2))
	s.holders = make(map[string][]*refObj)
	for _, objs := range [2][]refObj{s.users, s.chans} {
		for i := range objs {
			for _, w := range objs[i].words {
				s.holders[w] = append(s.holders[w], &objs[i])
			}
		}
	}
	s.terms = make([]string, 0, len(s.holders))
	for w := range s.holders {
		s.terms = append(s.terms, w)
	}
	slices.Sort(s.terms)
	return s
}

// memberCount is the number of members of channel ci (st.Members).
func (s *refState) memberCount(ci int32) int {
	ids, ok := s.memberIDs[ci]
	if !ok {
		ids = s.st.Members(s.chans[ci].id)
		s.memberIDs[ci] = ids
	}
	return len(ids)
}

// smallMembers returns the members of channel ci, which has at most affMax of them.
func (s *refState) smallMembers(ci int32) []int32 {
	if m, ok := s.members[ci]; ok {
		return m
	}
	if s.memberCount(ci) > s.affMax {
		s.t.Fatalf("smallMembers(%s): %d members", s.chans[ci].id, s.memberCount(ci))
	}
	m := make([]int32, 0, s.memberCount(ci))
	for _, id := range s.memberIDs[ci] {
		ui, ok := s.userIdx[id]
		if !ok {
			s.t.Fatalf("channel %s has member %s the store does not know", s.chans[ci].id, id)
		}
		m = append(m, ui)
	}
	s.members[ci] = m
	return m
}

// channelsOf returns the channels user is in (st.IsMember, over every channel).
func (s *refState) channelsOf(user string) []int32 {
	if cs, ok := s.chansOf[user]; ok {
		return cs
	}
	cs := []int32{}
	for ci := range s.chans {
		if s.st.IsMember(s.chans[ci].id, user) {
			cs = append(cs, int32(ci))
		}
	}
	s.chansOf[user] = cs
	return cs
}

// eachTerm calls fn for every word of the team that starts with prefix.
func (s *refState) eachTerm(prefix string, fn func(w string)) {
	i, _ := slices.BinarySearch(s.terms, prefix)
	for ; i < len(s.terms) && strings.HasPrefix(s.terms[i], prefix); i++ {
		fn(s.terms[i])
	}
}

func distinct(ws []string) []string {
	out := ws[:0]
	for _, w := range ws {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return slices.Clip(out)
}

// refUserLabel: the real name, with the display name in front when it says something the real
// name does not ("Ace (Alan Ventura)"); the display name or the handle when there is no real name.
func refUserLabel(name, display, realNm string) string {
	switch {
	case realNm == "" && display == "":
		return name
	case realNm == "":
		return display
	case display == "":
		return realNm
	}
	long := index.Words(realNm)
	for _, w := range index.Words(display) {
		if !slices.ContainsFunc(long, func(l string) bool { return strings.HasPrefix(l, w) }) {
			return display + " (" + realNm + ")"
		}
	}
	return realNm
}

// ---- the reference search ----

type refKey struct {
	tier int // 0: whole words, 1: prefixes
	aff  bool
	rec  int64
	term string // the matched word of the first query word
}

type refHit struct {
	o *refObj
	k refKey
}

// cmpRank is the part of the order every query must agree on: tier, affinity, recency.
func cmpRank(a, b *refKey) int {
	if c := cmp.Compare(a.tier, b.tier); c != 0 {
		return c
	}
	if a.aff != b.aff {
		if a.aff {
			return -1
		}
		return 1
	}
	return cmp.Compare(b.rec, a.rec)
}

// cmpFull is the whole order for a one-word query.
func cmpFull(a, b *refHit) int {
	if c := cmpRank(&a.k, &b.k); c != 0 {
		return c
	}
	if c := strings.Compare(a.k.term, b.k.term); c != 0 {
		return c
	}
	if c := strings.Compare(a.o.key, b.o.key); c != 0 {
		return c
	}
	if a.o.ch != b.o.ch {
		if !a.o.ch {
			return -1
		}
		return 1
	}
	return strings.Compare(a.o.id, b.o.id)
}

// refQuery is a query resolved for the reference: its words and the caller's affinity.
type refQuery struct {
	q         index.Query
	words     []string
	limit     int
	users     bool
	chans     bool
	inChan    []bool // channel idx → the caller is a member and it is not deleted
	closeUser []bool // user idx → shares a small live channel with the caller
}

func (s *refState) resolve(q index.Query) *refQuery {
	r := &refQuery{q: q, words: index.Words(q.Text), limit: q.Limit, users: q.Users, chans: q.Channels}
	if len(r.words) > 16 {
		r.words = r.words[:16]
	}
	if r.limit <= 0 {
		r.limit = 10
	}
	r.limit = min(r.limit, 50)
	if !r.users && !r.chans {
		r.users, r.chans = true, true
	}
	r.inChan = make([]bool, len(s.chans))
	r.closeUser = make([]bool, len(s.users))
	if _, ok := s.userIdx[q.Caller]; ok {
		for _, ci := range s.channelsOf(q.Caller) {
			if s.chans[ci].deleted {
				continue
			}
			r.inChan[ci] = true
			if s.memberCount(ci) <= s.affMax {
				for _, m := range s.smallMembers(ci) {
					r.closeUser[m] = true
				}
			}
		}
	}
	return r
}

// eval decides whether o is a result of r, and its key (recency left 0: it depends on the ring).
func (r *refQuery) eval(o *refObj) (k refKey, ok bool) {
	if len(r.words) == 0 {
		return k, false
	}
	if o.ch {
		if !r.chans || o.deleted || (o.archived && !r.q.IncludeInactive) {
			return k, false
		}
		k.aff = r.inChan[o.idx]
		if o.private && !k.aff {
			return k, false
		}
	} else {
		if !r.users || (o.deleted && !r.q.IncludeInactive) {
			return k, false
		}
		k.aff = r.closeUser[o.idx]
	}
	for _, qw := range r.words {
		if !slices.ContainsFunc(o.words, func(w string) bool { return strings.HasPrefix(w, qw) }) {
			return k, false
		}
	}
	for _, qw := range r.words {
		if !slices.Contains(o.words, qw) {
			k.tier = 1
			break
		}
	}
	for _, w := range o.words {
		if strings.HasPrefix(w, r.words[0]) && (k.term == "" || w < k.term) {
			k.term = w
		}
	}
	return k, true
}

// postings is the size of the driving word's posting lists: for each query word, the number
// of (object, distinct word starting with it) pairs over every object, deleted ones included;
// the index drives by the word with the fewest.
func (s *refState) postings(words []string) int {
	least := -1
	for _, qw := range words {
		n := 0
		s.eachTerm(qw, func(w string) { n += len(s.holders[w]) })
		if least < 0 || n < least {
			least = n
		}
	}
	return least
}

// search evaluates every object that has a word starting with the first query word (every
// match has one) and returns the matches, recency still 0.
func (s *refState) search(r *refQuery) []refHit {
	var hits []refHit
	if len(r.words) == 0 {
		return nil
	}
	s.gen++
	s.eachTerm(r.words[0], func(w string) {
		for _, o := range s.holders[w] {
			if o.stamp == s.gen {
				continue
			}
			o.stamp = s.gen
			if k, ok := r.eval(o); ok {
				hits = append(hits, refHit{o: o, k: k})
			}
		}
	})
	return hits
}

// top sets each match's recency from ring and returns the best limit under the full order.
func (d *diffRun) top(hits []refHit, ring *diffRing, limit int) []refHit {
	best := make([]refHit, 0, limit+1)
	for _, h := range hits {
		h.k.rec = ring.recency(h.o.id, d.last[h.o.id])
		if len(best) == limit && cmpFull(&h, &best[limit-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(best, h, func(a, b refHit) int { return cmpFull(&a, &b) })
		best = slices.Insert(best, i, h)
		if len(best) > limit {
			best = best[:limit]
		}
	}
	return best
}
