package index

import (
	"context"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/weft-edge/weft/cache"
)

// Query is one Quick Switcher request (docs/protocol.md section 4, autocomplete).
type Query struct {
	Text   string
	Caller string // the user typing: affinity and private-channel visibility are theirs
	// Users and Channels select the types returned; both false means both.
	Users, Channels bool
	Limit           int // 1 to MaxLimit; 0 means DefaultLimit
	IncludeInactive bool
}

// Limits of a query.
const (
	DefaultLimit = 10
	MaxLimit     = 50
	maxWords     = 16 // query words beyond these are ignored
)

// Result is one match, best first in a result list.
type Result struct {
	Type  string  `json:"type"` // "user" or "channel"
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Label string  `json:"label"`
	Score float64 `json:"score"` // higher is better; follows the order, for display and debugging
}

// Ranking, best first (docs/protocol.md, and what a person typing expects):
//
//  1. how well the words match: every query word is a whole word of the object ("john" →
//     John, before Johnny), then prefixes, then typo corrections (fewer edits first);
//  2. affinity: the caller's own channels, people who share a small channel with the caller;
//  3. recent activity: latest message first, among those still in the recent ring;
//  4. a stable tie-break: the matched word, then the label alphabetically, then the ID.
const (
	tierWords  = iota // every query word equals a word
	tierPrefix        // every query word starts a word
	tierFuzzy         // some query word matched only with corrections
)

type cand struct {
	oid  uint32
	tier uint8
	dist uint8 // edits of a fuzzy match
	aff  bool
	last int64  // recency (0: not recent)
	term uint32 // the driving word's matched term, for the tie-break
}

// parsed is a query's words resolved against the dictionary.
type parsed struct {
	spans    []span
	exact    []uint32       // term id of each word, when every word is a term
	drive    int            // the word whose terms have the fewest postings: candidates come from it
	estimate int            // postings of the driving word's terms
	sig      uint64         // signature bits every match has (see sigOf)
	fz       [][]correction // corrections of each typo word (nil: taken as typed)
	fdrive   int            // the typo word whose corrections supply the candidates
}

const scanLimit = 512 // postings below which a query simply evaluates every candidate

type scratch struct {
	aff          cache.Affinity
	gen          uint32
	umark, cmark []uint32 // == gen: evaluated by this query
	top          []cand
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (s *scratch) begin(users, chans int) {
	s.gen++
	if s.gen == 0 { // wrapped: old stamps could collide
		clear(s.umark)
		clear(s.cmark)
		s.gen = 1
	}
	if len(s.umark) < users {
		s.umark = append(s.umark, make([]uint32, users-len(s.umark))...)
	}
	if len(s.cmark) < chans {
		s.cmark = append(s.cmark, make([]uint32, chans-len(s.cmark))...)
	}
	s.top = s.top[:0]
}

// mark records oid as evaluated and reports whether it already was.
func (s *scratch) mark(oid uint32) (seen bool) {
	m := &s.umark
	if oid&chanBit != 0 {
		m, oid = &s.cmark, oid&^chanBit
	}
	if int(oid) >= len(*m) { // an object added since the query began
		*m = append(*m, make([]uint32, int(oid)+1-len(*m))...)
	}
	return mark(*m, oid, s.gen)
}

func mark(m []uint32, i, gen uint32) (seen bool) {
	seen = m[i] == gen
	m[i] = gen
	return seen
}

// seen reports whether oid was marked, without marking it.
func (s *scratch) seen(oid uint32) bool {
	m := s.umark
	if oid&chanBit != 0 {
		m, oid = s.cmark, oid&^chanBit
	}
	return int(oid) < len(m) && m[oid] == s.gen
}

// Search answers q, best first. It waits for the index to be built (bounded by ctx).
func (x *Index) Search(ctx context.Context, q Query) ([]Result, error) {
	select {
	case <-x.ready:
	case <-x.ctx.Done():
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	words := Words(q.Text)
	if len(words) > maxWords {
		words = words[:maxWords]
	}
	if len(words) == 0 {
		return []Result{}, nil
	}
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	if !q.Users && !q.Channels {
		q.Users, q.Channels = true, true
	}

	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	// Affinity reads the store under its own lock, before this index's lock is taken.
	x.store.Affinity(q.Caller, x.affinityMax(), &sc.aff)

	x.mu.RLock()
	if x.closed {
		x.mu.RUnlock()
		return nil, ErrClosed
	}
	sc.begin(len(x.users), len(x.chans))
	s := searcher{x: x, q: &q, sc: sc, p: x.parse(words), floor: x.recent.floor(), newest: x.recent.newest()}
	s.prefix()
	f := x.fuzzy
	// Typos are looked for only when the prefixes left room in the results, and only for the
	// words that start no word of the team at all: a word that does is taken as typed.
	var typos []int
	if len(sc.top) < q.Limit && !x.cfg.NoFuzzy {
		for i, w := range words {
			if sp := &s.p.spans[i]; sp.lo == sp.hi && sp.elo == sp.ehi && maxEdits(utf8.RuneCountInString(w)) > 0 {
				typos = append(typos, i)
			}
		}
	}
	needFuzzy := len(typos) > 0
	x.mu.RUnlock()

	if needFuzzy && f == nil {
		x.tryFuzzy() // the build was refused earlier (memory); it may be allowed now
	}
	if needFuzzy && f != nil && f.isReady() {
		if err := s.fuzzyLookup(f, words, typos); err != nil {
			if x.ctx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, err
		}
		x.mu.RLock()
		if !x.closed {
			s.fuzzy()
		}
		x.mu.RUnlock()
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]Result, 0, len(sc.top))
	for i := range sc.top {
		out = append(out, s.result(&sc.top[i]))
	}
	return out, nil
}

func (x *Index) affinityMax() int {
	return min(x.cfg.AffinityMaxMembers, max(2, int(x.nUsers.Load())/2))
}

func (x *Index) parse(words []string) *parsed {
	p := &parsed{spans: make([]span, len(words)), exact: make([]uint32, 0, len(words)), estimate: -1}
	for i, w := range words {
		p.spans[i] = x.dict.span(w)
		if n := x.dict.estimate(&p.spans[i]); p.estimate < 0 || n < p.estimate {
			p.drive, p.estimate = i, n
		}
		if t, ok := x.dict.ids[w]; ok && len(p.exact) == i {
			p.exact = append(p.exact, t)
		}
		p.sig |= sigOf(w)
	}
	if len(p.exact) < len(words) {
		p.exact = nil
	}
	return p
}

type searcher struct {
	x             *Index
	q             *Query
	sc            *scratch
	p             *parsed
	floor, newest int64
}

// eval pushes object oid to the top list if it is a result, and reports its tier.
func (s *searcher) eval(oid uint32, fuzzy bool) (tier uint8, ok bool) {
	c, ok := s.judge(oid, fuzzy)
	if ok {
		s.push(c)
	}
	return c.tier, ok
}

// judge decides whether object oid is a result for this caller, and with what rank. Caller
// holds x.mu for reading.
func (s *searcher) judge(oid uint32, fuzzy bool) (c cand, ok bool) {
	o := s.x.obj(oid)
	if o == nil || o.flags&fLive == 0 || (o.flags&fInactive != 0 && !s.q.IncludeInactive) {
		return c, false
	}
	if oid&chanBit != 0 {
		if !s.q.Channels {
			return c, false
		}
		c.aff = s.sc.aff.InChannel(oid &^ chanBit)
		if o.flags&fPrivate != 0 && !c.aff {
			return c, false // a private channel does not exist for a non-member
		}
	} else {
		if !s.q.Users {
			return c, false
		}
		c.aff = s.sc.aff.HasUser(oid)
	}
	c.oid = oid
	if fuzzy {
		if !s.matchFuzzy(o, &c) {
			return c, false
		}
	} else if !s.match(o, &c) {
		return c, false
	}
	if o.last > s.floor || (o.last == s.floor && s.x.recent.holdsFloor(oid)) {
		c.last = o.last
	}
	return c, true
}

// match checks that every query word starts a word of o, and sets c's tier and term.
func (s *searcher) match(o *object, c *cand) bool {
	d := &s.x.dict
	var got uint32
	best := sep
	for _, t := range o.words {
		if t == sep {
			continue
		}
		for i := range s.p.spans {
			if d.has(&s.p.spans[i], t) {
				got |= 1 << i
				if i == s.p.drive && (best == sep || d.less(t, best)) {
					best = t
				}
			}
		}
	}
	if got != 1<<len(s.p.spans)-1 {
		return false
	}
	c.term, c.tier = best, tierPrefix
	if s.p.exact != nil {
		c.tier = s.exactTier(o.words)
	}
	return true
}

// exactTier tells a whole-words match from a prefix match.
func (s *searcher) exactTier(words []uint32) uint8 {
	for _, t := range s.p.exact {
		if !slices.Contains(words, t) {
			return tierPrefix
		}
	}
	return tierWords
}

// less is the ranking order.
func (s *searcher) less(a, b *cand) bool {
	if a.tier != b.tier {
		return a.tier < b.tier
	}
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	if a.aff != b.aff {
		return a.aff
	}
	if a.last != b.last {
		return a.last > b.last
	}
	if a.term != b.term {
		return s.x.dict.less(a.term, b.term)
	}
	return s.x.cmpOID(a.oid, b.oid) < 0
}

// push keeps the best q.Limit candidates in order.
func (s *searcher) push(c cand) {
	top := s.sc.top
	if len(top) == s.q.Limit && !s.less(&c, &top[len(top)-1]) {
		return
	}
	i := len(top)
	for i > 0 && s.less(&c, &top[i-1]) {
		i--
	}
	if len(top) < s.q.Limit {
		top = append(top, cand{})
	}
	copy(top[i+1:], top[i:len(top)-1])
	top[i] = c
	s.sc.top = top
}

// prefix finds the prefix matches. A small candidate set (the driving word's postings) is
// evaluated whole. A large one (a one- or two-letter word on a big team) is not: the results
// are assembled from the sets that can outrank the rest, each complete and bounded by the
// caller (their affinity, the recent ring), then from two walks in tie-break order that stop
// after Limit results each: the whole-word matches (the rarest exact word's postings), then
// the prefix matches (the driving word's). Every set is screened by the objects' signatures
// first, which live in a compact array of their own, before an object is looked at.
func (s *searcher) prefix() {
	d := &s.x.dict
	sc, p := s.sc, s.p
	span := &p.spans[p.drive]
	if p.estimate <= scanLimit {
		d.eachTerm(span, func(t uint32) bool {
			for _, oid := range d.lists[t] {
				if s.x.sigOK(oid, p.sig) && !sc.mark(oid) {
					s.eval(oid, false)
				}
			}
			return true
		})
		return
	}
	if s.q.Channels {
		for _, ci := range sc.aff.Channels {
			if oid := ci | chanBit; s.x.sigOK(oid, p.sig) && !sc.mark(oid) {
				s.eval(oid, false)
			}
		}
	}
	if s.q.Users {
		for _, ui := range sc.aff.Users {
			if s.x.sigOK(ui, p.sig) && !sc.mark(ui) {
				s.eval(ui, false)
			}
		}
	}
	s.x.recent.each(func(oid uint32, seq int64) bool {
		if s.x.sigOK(oid, p.sig) {
			if o := s.x.obj(oid); o != nil && o.last == seq && !sc.mark(oid) {
				s.eval(oid, false)
			}
		}
		return true
	})
	// Whole-word matches left: all hold the exact term of every query word; walk the rarest.
	if p.exact != nil {
		rare := p.exact[0]
		for _, t := range p.exact[1:] {
			if len(d.lists[t]) < len(d.lists[rare]) {
				rare = t
			}
		}
		found := 0
		for _, oid := range d.lists[rare] {
			if !s.x.sigOK(oid, p.sig) || s.sc.seen(oid) {
				continue
			}
			// One judged a prefix match stays unmarked: the next walk ranks it with its kind.
			if c, ok := s.judge(oid, false); ok && c.tier == tierWords {
				sc.mark(oid)
				s.push(c)
				if found++; found == s.q.Limit {
					return // nothing the next walk finds can outrank these
				}
			}
		}
	}
	// What is left ranks below everything above, and in walk order among itself.
	found := 0
	d.eachTerm(span, func(t uint32) bool {
		for _, oid := range d.lists[t] {
			if !s.x.sigOK(oid, p.sig) || sc.mark(oid) {
				continue
			}
			if _, ok := s.eval(oid, false); ok {
				if found++; found == s.q.Limit {
					return false
				}
			}
		}
		return true
	})
}

// correction is a dictionary term within a few edits of a query word.
type correction struct {
	term uint32
	dist uint8
}

// result turns a candidate into what the client gets. Caller holds x.mu for reading.
func (s *searcher) result(c *cand) Result {
	o := s.x.obj(c.oid)
	r := Result{Type: "user", ID: o.id, Name: o.name, Label: o.label}
	if c.oid&chanBit != 0 {
		r.Type = "channel"
	}
	r.Score = float64(100 * (tierFuzzy + 1 - int(c.tier)))
	r.Score -= float64(c.dist) * 10
	if c.aff {
		r.Score += 10
	}
	if c.last > 0 && s.newest >= s.floor {
		r.Score += 5 * float64(c.last-s.floor+1) / float64(s.newest-s.floor+1)
	}
	return r
}
