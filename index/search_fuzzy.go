package index

import (
	"slices"
	"unicode/utf8"
)

// The typo path of Search: corrections from the fallback, then candidates that match with them.

// fuzzyLookup asks the fallback for corrections of the query words that start no term. Called
// without x.mu: bleve has its own locking.
//
// One edit is tried first, with swaps of adjacent letters ("jhon") checked against the
// dictionary directly (bleve's distance counts a swap as two edits); two edits only for words
// of 6+ letters that one edit did not correct.
func (s *searcher) fuzzyLookup(f *fuzzy, words []string, typos []int) error {
	s.p.fz = make([][]correction, len(words))
	for _, i := range typos {
		w := words[i]
		var cs []correction
		for dist := 1; dist <= maxEdits(utf8.RuneCountInString(w)) && len(cs) == 0; dist++ {
			terms, err := f.lookup(w, dist)
			if err != nil {
				return err
			}
			if dist == 1 {
				terms = append(terms, swaps(w)...)
			}
			for _, t := range terms {
				if e := editDistance(w, t, dist); e <= dist {
					if id := s.termID(t); id != sep && !slices.ContainsFunc(cs, func(c correction) bool { return c.term == id }) {
						cs = append(cs, correction{id, uint8(e)})
					}
				}
			}
		}
		s.p.fz[i] = cs
	}
	return nil
}

// swaps returns w with each pair of adjacent letters swapped.
func swaps(w string) []string {
	r := []rune(w)
	var out []string
	for i := 0; i+1 < len(r); i++ {
		if r[i] == r[i+1] {
			continue
		}
		r[i], r[i+1] = r[i+1], r[i]
		out = append(out, string(r))
		r[i], r[i+1] = r[i+1], r[i]
	}
	return out
}

// termID resolves a term the fallback returned; sep for one the dictionary no longer has.
func (s *searcher) termID(t string) uint32 {
	s.x.mu.RLock()
	defer s.x.mu.RUnlock()
	if id, ok := s.x.dict.ids[t]; ok {
		return id
	}
	return sep
}

// fuzzyBudget bounds the postings one typo query evaluates.
const fuzzyBudget = 1 << 14

// fuzzy adds the matches that need corrections, after the prefix matches. Candidates come from
// the corrections of one typo word (the one whose corrections have the fewest postings), by
// increasing edit distance: once a distance has filled the results, a farther correction
// cannot outrank them, so the walk stops there. Caller holds x.mu for reading.
func (s *searcher) fuzzy() {
	d := &s.x.dict
	drive, best := -1, 0
	var sig uint64 // what the words taken as typed require
	for i, cs := range s.p.fz {
		if cs == nil {
			sig |= sigOf(s.p.spans[i].q)
			continue
		}
		n := 0
		for _, c := range cs {
			n += len(d.lists[c.term])
		}
		if drive < 0 || n < best {
			drive, best = i, n
		}
	}
	if drive < 0 {
		return
	}
	s.p.fdrive = drive
	cs := slices.Clone(s.p.fz[drive])
	slices.SortFunc(cs, func(a, b correction) int {
		if a.dist != b.dist {
			return int(a.dist) - int(b.dist)
		}
		if d.less(a.term, b.term) {
			return -1
		}
		return 1
	})
	budget := fuzzyBudget
	for k, c := range cs {
		if k > 0 && c.dist > cs[k-1].dist && len(s.sc.top) == s.q.Limit {
			return
		}
		for _, oid := range d.lists[c.term] {
			if budget--; budget < 0 {
				return
			}
			if s.x.sigOK(oid, sig) && !s.sc.mark(oid) {
				s.eval(oid, true)
			}
		}
	}
}

// matchFuzzy checks that every query word starts a word of o or is a correction of one, with
// at least one correction (the rest are prefix matches, found already).
func (s *searcher) matchFuzzy(o *object, c *cand) bool {
	d := &s.x.dict
	var prefix, any uint32
	var dist [maxWords]uint8
	for i := range s.p.spans {
		dist[i] = fuzzyMaxDist + 1
	}
	best, bestDist := sep, uint8(fuzzyMaxDist+1)
	for _, t := range o.words {
		if t == sep {
			continue
		}
		for i := range s.p.spans {
			if d.has(&s.p.spans[i], t) {
				prefix |= 1 << i
				any |= 1 << i
				dist[i] = 0
				continue
			}
			for _, cr := range s.p.fz[i] {
				if cr.term != t {
					continue
				}
				any |= 1 << i
				dist[i] = min(dist[i], cr.dist)
				if i == s.p.fdrive && (cr.dist < bestDist || cr.dist == bestDist && d.less(t, best)) {
					best, bestDist = t, cr.dist
				}
			}
		}
	}
	all := uint32(1)<<len(s.p.spans) - 1
	if any != all || prefix == all {
		return false
	}
	c.tier, c.term = tierFuzzy, best
	for _, e := range dist[:len(s.p.spans)] {
		c.dist += e
	}
	return true
}
