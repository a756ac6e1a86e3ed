package index

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bindex "github.com/blevesearch/bleve_index_api"
)

// The typo fallback. bleve earns its place here: its fuzzy search runs a Levenshtein automaton
// over its term dictionary (an FST), which is what "jhon" → "john" needs and what a sorted
// array cannot do. It indexes the team's distinct name words, one document per word (a giant
// team has ~24,000 of them for 366,000 users), not one per object, so it stays small and builds
// in about a second; the candidates a fuzzy word finds go back through the prefix path's
// posting lists and ranking.

const (
	fuzzyMinLen   = 4   // shorter words are not corrected: too many words are one edit away
	fuzzyMaxDist  = 2   // bleve's ceiling
	fuzzyMaxTerms = 256 // corrections considered per query word
	fuzzyBatch    = 4096
)

type fuzzy struct {
	idx   bleve.Index
	ready chan struct{} // closed once the build's terms are indexed
	kick  chan struct{} // a term was queued

	mu    sync.Mutex
	queue []string // terms first seen after the build started
}

type termDoc struct {
	T string `json:"t"`
}

func newFuzzy() (*fuzzy, error) {
	fm := mapping.NewTextFieldMapping()
	fm.Analyzer = keyword.Name // terms are folded single words already
	fm.Store, fm.IncludeInAll, fm.IncludeTermVectors, fm.DocValues = false, false, false, false
	dm := mapping.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt("t", fm)
	m := mapping.NewIndexMapping()
	m.DefaultMapping = dm
	m.StoreDynamic, m.IndexDynamic, m.DocValuesDynamic = false, false, false
	// scorch with an empty path is in memory only.
	idx, err := bleve.NewUsing("", m, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, err
	}
	return &fuzzy{idx: idx, ready: make(chan struct{}), kick: make(chan struct{}, 1)}, nil
}

// build indexes the initial terms, holding a slot of gate (when set) while it does; took is
// the build's own time, without the wait for the slot.
func (f *fuzzy) build(ctx context.Context, gate chan struct{}, terms []string) (took time.Duration, err error) {
	if gate != nil {
		select {
		case gate <- struct{}{}:
			defer func() { <-gate }()
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	begin := time.Now()
	for len(terms) > 0 {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		n := min(len(terms), fuzzyBatch)
		if err := f.index(terms[:n]); err != nil {
			return 0, err
		}
		terms = terms[n:]
	}
	return time.Since(begin), nil
}

// run indexes terms in batches, reports, then indexes queued terms as they come until ctx ends.
func (f *fuzzy) run(ctx context.Context, gate chan struct{}, terms []string, done func(time.Duration)) error {
	took, err := f.build(ctx, gate, terms)
	if err != nil {
		return err
	}
	close(f.ready)
	done(took)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.kick:
		}
		f.mu.Lock()
		q := f.queue
		f.queue = nil
		f.mu.Unlock()
		if err := f.index(q); err != nil {
			return err
		}
	}
}

func (f *fuzzy) index(terms []string) error {
	b := f.idx.NewBatch()
	for _, t := range terms {
		if err := b.Index(t, termDoc{T: t}); err != nil {
			return err
		}
	}
	return f.idx.Batch(b)
}

// add queues terms first seen in events. It never blocks.
func (f *fuzzy) add(terms []string) {
	f.mu.Lock()
	f.queue = append(f.queue, terms...)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *fuzzy) isReady() bool {
	select {
	case <-f.ready:
		return true
	default:
		return false
	}
}

// lookup returns the indexed terms within dist edits (Levenshtein) of word, at most
// fuzzyMaxTerms of them, or nil before the build is done. It walks bleve's term dictionary with
// its Levenshtein automaton and nothing more: no postings, no scoring. Building the automaton
// for one edit costs ~0.1 ms, for two ~0.35 ms (measured on 9K terms), hence one edit first.
func (f *fuzzy) lookup(word string, dist int) ([]string, error) {
	if !f.isReady() {
		return nil, nil
	}
	adv, err := f.idx.Advanced()
	if err != nil {
		return nil, err
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fr, ok := r.(bindex.IndexReaderFuzzy)
	if !ok {
		return nil, errors.New("index: bleve reader has no fuzzy dictionary")
	}
	dict, err := fr.FieldDictFuzzy("t", word, dist, "")
	if err != nil {
		return nil, err
	}
	defer dict.Close()
	var out []string
	for len(out) < fuzzyMaxTerms {
		e, err := dict.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		out = append(out, e.Term)
	}
	return out, nil
}

// stats reports whether the build is done and bleve's own estimate of its memory.
func (f *fuzzy) stats() (ready bool, bytes int64) {
	if adv, err := f.idx.Advanced(); err == nil {
		if m, ok := adv.(interface{ MemoryUsed() uint64 }); ok {
			bytes = int64(m.MemoryUsed())
		}
	}
	return f.isReady(), bytes
}

func (f *fuzzy) close() { _ = f.idx.Close() }

// maxEdits is how many corrections a query word of n letters may need: one for 4 or 5
// letters, two from 6. More than that and short words match everything ("jose" is two edits
// from "jane", "john" and "zoe").
func maxEdits(n int) int {
	switch {
	case n < fuzzyMinLen:
		return 0
	case n < 6:
		return 1
	}
	return 2
}

// editDistance is the optimal-string-alignment distance of a and b (insertions, deletions,
// substitutions and swaps of two adjacent letters, the commonest typo: "jhon"), or max+1 once
// it exceeds max. bleve finds candidates by plain Levenshtein distance, where a swap costs 2;
// this decides and ranks.
func editDistance(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > max || -d > max {
		return max + 1
	}
	// Three rows: the one two back is needed for swaps.
	back, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], back[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > max {
			return max + 1
		}
		back, prev, cur = prev, cur, back
	}
	return prev[len(rb)]
}
