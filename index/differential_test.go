package index_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/index"
)

// TestDifferential checks Search on the 32k world against a brute-force reference written
// from the ranking rules alone (match, visibility, tier, affinity, recency, tie-break), over
// 400 seeded random queries interleaved with rounds of event churn (renames, deactivations,
// channel renames, archives and deletions, joins and leaves, messages). The reference reads the
// store afresh every round (objects through EachObject, memberships through Members and
// IsMember) and evaluates every object that has a word starting with the first query word,
// which every match has; it shares nothing with the index but Words and Fold.
//
// The queries reach both of the index's prefix paths: rare prefixes its full scan of the
// driving word's postings, one- and two-letter ones (and common whole words) its bucketed path
// (affinity sets, recent ring, whole-word walk, prefix walk).
//
// Two indexes follow the same store: one with an even recent ring (64 entries: a message's
// two entries always leave it together) and one with an odd ring (61: the ring's oldest
// message may have lost its sender's entry but kept its channel's), both small enough to wrap.
//
// For every query and index it asserts that every result is a visible match, that the results
// are in (tier, affinity, recency) order, that they hold the same (tier, affinity, recency)
// keys as the reference's top-limit (nothing better was missed) and as many results, and, for
// one-word queries, that they are exactly the reference's top-limit under the full order.
// (For several words the tie-break term is that of the word the index drives by, its choice.)
func TestDifferential(t *testing.T) {
	srv := worldServer(t, "32k")
	team := srv.TeamIDs()[0]
	d := &diffRun{
		t:    t,
		st:   storeOf(t, srv, team),
		team: team,
		rng:  rand.New(rand.NewPCG(0x5eed, 0xd1ff)),
		last: make(map[string]int64),
		msgs: make(map[int64][2]string),
	}
	for _, n := range []int{64, 61} {
		x := index.New(d.st, index.Config{NoFuzzy: true, Recent: n})
		t.Cleanup(x.Close)
		d.subjects = append(d.subjects, &diffSubject{x: x, ring: newDiffRing(n)})
	}
	for _, s := range d.subjects {
		waitReady(t, s.x)
	}
	d.ref = d.snapshot(nil)
	d.pickEdge()

	const rounds, queriesPerRound, eventsPerRound = 10, 40, 60
	for round := range rounds {
		d.round = round
		if round > 0 {
			d.churn(eventsPerRound)
			d.ref = d.snapshot(d.ref)
		}
		for range queriesPerRound {
			q, kind := d.query()
			d.check(q, kind)
			if d.failures >= diffMaxFailures {
				t.Fatalf("stopping after %d disagreements", d.failures)
			}
		}
	}
	t.Logf("%d queries (%d one-word), each checked against %d indexes; %d events; drive-word postings: %d queries > %d (bucketed path), %d ≤ %d (scan path)",
		d.queries, d.oneWord, len(d.subjects), d.seq, d.bucketed, diffScanLimit, d.scanned, diffScanLimit)
	t.Logf("bucketed queries whose expected results hold: whole-word matches %d, affinity %d, recent activity %d, neither (walk order) %d",
		d.cover[0], d.cover[1], d.cover[2], d.cover[3])
	// The point of the test is both prefix paths: make sure the mix keeps reaching them.
	if d.bucketed < 100 || d.scanned < 100 {
		t.Errorf("query mix reached the bucketed path %d times and the scan path %d times; want 100+ each",
			d.bucketed, d.scanned)
	}
}

const (
	diffScanLimit   = 512 // the index's scanLimit: postings at or below are evaluated whole
	diffMaxFailures = 8
	diffNobody      = "U_NOBODY" // a caller the store does not know: no affinity, no private channels
)

type diffSubject struct {
	x    *index.Index
	ring *diffRing
}

type diffRun struct {
	t        *testing.T
	st       *cache.Store
	team     string
	rng      *rand.Rand
	subjects []*diffSubject
	ref      *refState
	last     map[string]int64    // object ID → seq of its latest message
	msgs     map[int64][2]string // seq of a message → its sender and channel
	renamed  []renamed           // objects renamed by events, with a word they had before
	seq      int64
	round    int
	edge     string // a channel kept crossing the affinity size limit
	edgeUp   bool

	queries, oneWord, bucketed, scanned, failures int
	cover                                         [4]int // bucketed queries expecting tier 0, affinity, recency, neither
}

type renamed struct {
	ref objRef
	old string
}

// ---- checking ----

func (d *diffRun) check(q index.Query, kind string) {
	d.queries++
	r := d.ref.resolve(q)
	one := len(r.words) == 1
	if one {
		d.oneWord++
	}
	path := "empty"
	if len(r.words) > 0 {
		if n := d.ref.postings(r.words); n > diffScanLimit {
			d.bucketed++
			path = fmt.Sprintf("bucketed (%d postings)", n)
		} else {
			d.scanned++
			path = fmt.Sprintf("scan (%d postings)", n)
		}
	}
	hits := d.ref.search(r)
	for _, sub := range d.subjects {
		got, err := sub.x.Search(context.Background(), q)
		if err != nil {
			d.t.Fatalf("Search(%s): %v", describe(q), err)
		}
		want := d.top(hits, sub.ring, r.limit)
		if strings.HasPrefix(path, "bucketed") && sub == d.subjects[0] {
			var has [4]bool
			for _, h := range want {
				has[0] = has[0] || h.k.tier == 0
				has[1] = has[1] || h.k.aff
				has[2] = has[2] || h.k.rec > 0
				has[3] = has[3] || (!h.k.aff && h.k.rec == 0)
			}
			for i, ok := range has {
				if ok {
					d.cover[i]++
				}
			}
		}
		var problems []string
		gotHits := make([]*refHit, len(got))
		seen := make(map[objRef]bool)
		for i, res := range got {
			ref := objRef{res.Type, res.ID}
			o := d.ref.byID[ref]
			switch {
			case o == nil:
				problems = append(problems, fmt.Sprintf("result %d: unknown %s %s", i+1, res.Type, res.ID))
				continue
			case seen[ref]:
				problems = append(problems, fmt.Sprintf("result %d: %s %s twice", i+1, res.Type, res.ID))
			case res.Label != o.label || res.Name != o.name:
				problems = append(problems, fmt.Sprintf("result %d: %s shown as %q/%q, store has %q/%q",
					i+1, res.ID, res.Name, res.Label, o.name, o.label))
			}
			seen[ref] = true
			k, ok := r.eval(o)
			if !ok {
				problems = append(problems, fmt.Sprintf("result %d: %s %q is not a visible match", i+1, res.ID, res.Label))
				continue
			}
			k.rec = sub.ring.recency(o.id, d.last[o.id])
			gotHits[i] = &refHit{o: o, k: k}
		}
		for i := 1; i < len(gotHits); i++ {
			if a, b := gotHits[i-1], gotHits[i]; a != nil && b != nil && cmpRank(&a.k, &b.k) > 0 {
				problems = append(problems, fmt.Sprintf("results %d and %d out of (tier, affinity, recency) order", i, i+1))
			}
		}
		if len(got) != len(want) {
			problems = append(problems, fmt.Sprintf("%d results, want %d (of %d matches)", len(got), len(want), len(hits)))
		}
		gotKeys, wantKeys := make([]string, 0, len(got)), make([]string, 0, len(want))
		for _, h := range gotHits {
			if h != nil {
				gotKeys = append(gotKeys, rankString(&h.k))
			}
		}
		for i := range want {
			wantKeys = append(wantKeys, rankString(&want[i].k))
		}
		slices.Sort(gotKeys)
		slices.Sort(wantKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			problems = append(problems, "the (tier, affinity, recency) keys differ from the reference's top-limit")
		}
		if one && len(problems) == 0 {
			for i := range want {
				if got[i].ID != want[i].o.id {
					problems = append(problems, fmt.Sprintf("first difference at result %d", i+1))
					break
				}
			}
		}
		if len(problems) > 0 {
			d.failures++
			d.t.Errorf("round %d, Recent=%d (%s), %s query %s, %s, %d matches:\n  %s\n%s",
				d.round, len(sub.ring.ids), d.ringString(sub.ring), kind, describe(q), path, len(hits),
				strings.Join(problems, "\n  "), d.sideBySide(gotHits, got, want))
		}
	}
}

// ringString describes the ring's oldest end: its floor and the entries at it.
func (d *diffRun) ringString(r *diffRing) string {
	if !r.full {
		return fmt.Sprintf("not wrapped, %d entries", r.next)
	}
	floor := r.seqs[r.next]
	var in []string
	for i, seq := range r.seqs {
		if seq == floor {
			in = append(in, r.ids[i])
		}
	}
	m := d.msgs[floor]
	return fmt.Sprintf("floor %d: message of %s in %s; entries left in the ring at the floor: %s",
		floor, m[0], m[1], strings.Join(in, ", "))
}

func rankString(k *refKey) string {
	return fmt.Sprintf("t%d aff=%v rec=%d", k.tier, k.aff, k.rec)
}

func hitString(h *refHit) string {
	return fmt.Sprintf("%s [t%d aff=%v rec=%d term=%s key=%q] %q", h.o.id, h.k.tier, h.k.aff, h.k.rec, h.k.term, h.o.key, h.o.label)
}

func (d *diffRun) sideBySide(gotHits []*refHit, got []index.Result, want []refHit) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  got (%d):\n", len(got))
	for i, h := range gotHits {
		if h == nil {
			fmt.Fprintf(&b, "    %2d. %s %s %q (not a match)\n", i+1, got[i].Type, got[i].ID, got[i].Label)
			continue
		}
		fmt.Fprintf(&b, "    %2d. %s\n", i+1, hitString(h))
	}
	fmt.Fprintf(&b, "  want (%d):\n", len(want))
	for i := range want {
		fmt.Fprintf(&b, "    %2d. %s\n", i+1, hitString(&want[i]))
	}
	return b.String()
}
