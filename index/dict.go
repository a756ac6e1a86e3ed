package index

import (
	"slices"
	"sort"
	"strings"
)

// dict is the prefix path's structure: every distinct folded word of a team's names (a term),
// and for each term the objects that have it, ordered for the tie-break (folded label, then
// object ID order).
//
// Terms read at build time get ids in sorted order (ids 0..nMain-1), so "every term starting
// with q" is one contiguous id range found by two binary searches, and "does this object have
// a word starting with q" is an integer range check per word. Terms first seen in later events
// get the next ids and a small sorted side list; a query merges the two, so no event ever
// triggers a rebuild.
//
// Posting lists start as windows of one arena with cap == len: adding an object to a term
// copies that one list, never the arena.
type dict struct {
	terms []string          // by term id
	ids   map[string]uint32 // term → id
	lists [][]uint32        // by term id: object ids, ordered by (key, oid)
	nMain uint32            // ids below are the build's terms, in sorted order
	extra []uint32          // ids of later terms, sorted by term
	cum   []int32           // cum[i]: postings of main terms before i, at build (estimates)
}

// span is the set of terms that start with one query word: main ids [lo, hi) and extra[elo:ehi].
type span struct {
	q        string
	lo, hi   uint32
	elo, ehi int
}

func (d *dict) span(q string) span {
	main := d.terms[:d.nMain]
	lo := sort.SearchStrings(main, q)
	hi := lo + sort.Search(len(main)-lo, func(i int) bool { return !strings.HasPrefix(main[lo+i], q) })
	elo := sort.Search(len(d.extra), func(i int) bool { return d.terms[d.extra[i]] >= q })
	ehi := elo + sort.Search(len(d.extra)-elo, func(i int) bool {
		return !strings.HasPrefix(d.terms[d.extra[elo+i]], q)
	})
	return span{q: q, lo: uint32(lo), hi: uint32(hi), elo: elo, ehi: ehi}
}

// has reports whether term id t starts with the span's word.
func (d *dict) has(s *span, t uint32) bool {
	if t < d.nMain {
		return s.lo <= t && t < s.hi
	}
	return strings.HasPrefix(d.terms[t], s.q)
}

// estimate is about how many postings the span covers (main counts are as of the build).
func (d *dict) estimate(s *span) int {
	n := int(d.cum[s.hi] - d.cum[s.lo])
	for _, t := range d.extra[s.elo:s.ehi] {
		n += len(d.lists[t])
	}
	return n
}

// eachTerm calls fn for every term of the span in term order, until fn returns false.
func (d *dict) eachTerm(s *span, fn func(t uint32) bool) {
	i, j := s.lo, s.elo
	for i < s.hi || j < s.ehi {
		if j == s.ehi || (i < s.hi && d.terms[i] < d.terms[d.extra[j]]) {
			if !fn(i) {
				return
			}
			i++
			continue
		}
		if !fn(d.extra[j]) {
			return
		}
		j++
	}
}

// less orders term ids by their terms.
func (d *dict) less(a, b uint32) bool {
	if a < d.nMain && b < d.nMain {
		return a < b
	}
	return d.terms[a] < d.terms[b]
}

// intern returns the id of term, adding it (to the extra side) when new.
func (d *dict) intern(term string) (id uint32, fresh bool) {
	if t, ok := d.ids[term]; ok {
		return t, false
	}
	t := uint32(len(d.terms))
	d.terms = append(d.terms, term)
	d.lists = append(d.lists, nil)
	d.ids[term] = t
	i := sort.Search(len(d.extra), func(i int) bool { return d.terms[d.extra[i]] >= term })
	d.extra = slices.Insert(d.extra, i, t)
	return t, true
}

// add inserts object o into term t's list at its place; cmp orders two objects.
func (d *dict) add(t, o uint32, cmp func(a, b uint32) int) {
	l := d.lists[t]
	i, found := slices.BinarySearchFunc(l, o, cmp)
	if !found {
		d.lists[t] = slices.Insert(l, i, o)
	}
}

// remove takes object o out of term t's list; cmp must order o as it did when o was added.
func (d *dict) remove(t, o uint32, cmp func(a, b uint32) int) {
	l := d.lists[t]
	if i, found := slices.BinarySearchFunc(l, o, cmp); found {
		d.lists[t] = slices.Delete(l, i, i+1)
	}
}

func (d *dict) bytes() int64 {
	n := int64(len(d.terms))*(16+4+24+48) + int64(len(d.extra))*4 + int64(len(d.cum))*4
	for i, t := range d.terms {
		n += int64(len(t)) + int64(cap(d.lists[i]))*4
	}
	return n
}
