package index_test

// bleve alone as the Quick Switcher: the baseline the giant benchmarks (giant_bench_test.go)
// put our index beside. One bleve document per user and per channel (~402,000 on the giant
// team), its one text field "w" holding the object's folded words (index.Words of the name,
// display name and real name, joined by spaces) and analyzed by a custom analyzer of the
// whitespace tokenizer and no token filter, so that bleve's terms are exactly our dictionary's.
// The index is scorch in memory (empty path), built in batches of bleveBatch documents.
//
// A query is a conjunction of one PrefixQuery per query word; the typo class uses a FuzzyQuery
// of fuzziness 2 instead for its words of 4 letters or more (bleve alone is told the class: it
// has no prefix-then-fallback to pay for). Size 10, bleve's default scoring (tf-idf): bleve
// cannot rank by our criteria (whole word before prefix, the caller's affinity, recent
// activity, label), nor hide the private channels the caller is not in, so its answers are not
// the same answers; the comparison is of cost only.
//
// Scorch in memory has no merger (it runs only for an index on disk), so each batch stays a
// segment of its own and so does every document indexed later on its own (idx.Index).

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/token/edgengram"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/whitespace"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
)

const (
	bleveBatch    = 10_000
	bleveField    = "w"
	bleveAnalyzer = "weft_words" // whitespace tokenizer, no token filters
)

// bleveDoc is one object: its folded words.
type bleveDoc struct {
	W string `json:"w"`
}

type bleveObj struct {
	id  string
	doc bleveDoc
}

func wordsDoc(fields ...string) bleveDoc {
	var ws []string
	for _, f := range fields {
		ws = append(ws, index.Words(f)...)
	}
	return bleveDoc{W: strings.Join(ws, " ")}
}

func bleveUserDoc(u *origin.User) bleveDoc { return wordsDoc(u.Name, u.DisplayName, u.RealName) }

// giantObjects are the giant team's users and channels as bleve documents.
func giantObjects(srv *reference.Server) []bleveObj {
	team := srv.TeamIDs()[0]
	users, chans := srv.Users(team), srv.Channels(team)
	objs := make([]bleveObj, 0, len(users)+len(chans))
	for i := range users {
		objs = append(objs, bleveObj{users[i].ID, bleveUserDoc(&users[i])})
	}
	for i := range chans {
		objs = append(objs, bleveObj{chans[i].ID, wordsDoc(chans[i].Name)})
	}
	return objs
}

// bleveMapping maps bleveDoc's field with analyzer, nothing stored, no term vectors.
func bleveMapping(analyzer string, def map[string]any, filters map[string]map[string]any) (*mapping.IndexMappingImpl, error) {
	m := mapping.NewIndexMapping()
	for name, cfg := range filters {
		if err := m.AddCustomTokenFilter(name, cfg); err != nil {
			return nil, err
		}
	}
	if err := m.AddCustomAnalyzer(analyzer, def); err != nil {
		return nil, err
	}
	fm := mapping.NewTextFieldMapping()
	fm.Analyzer = analyzer
	fm.Store, fm.IncludeInAll, fm.IncludeTermVectors, fm.DocValues = false, false, false, false
	dm := mapping.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt(bleveField, fm)
	m.DefaultMapping = dm
	m.StoreDynamic, m.IndexDynamic, m.DocValuesDynamic = false, false, false
	return m, nil
}

func wordsMapping() (*mapping.IndexMappingImpl, error) {
	return bleveMapping(bleveAnalyzer, map[string]any{
		"type":          custom.Name,
		"tokenizer":     whitespace.Name,
		"token_filters": []any{},
	}, nil)
}

// buildBleve indexes objs into a new in-memory scorch index.
func buildBleve(b *testing.B, objs []bleveObj) (bleve.Index, time.Duration) {
	m, err := wordsMapping()
	if err != nil {
		b.Fatal(err)
	}
	return buildBleveWith(b, m, objs)
}

func buildBleveWith(b *testing.B, m mapping.IndexMapping, objs []bleveObj) (bleve.Index, time.Duration) {
	begin := time.Now()
	idx, err := bleve.NewUsing("", m, scorch.Name, scorch.Name, nil)
	if err != nil {
		b.Fatal(err)
	}
	for len(objs) > 0 {
		n := min(len(objs), bleveBatch)
		batch := idx.NewBatch()
		for _, o := range objs[:n] {
			if err := batch.Index(o.id, o.doc); err != nil {
				b.Fatal(err)
			}
		}
		if err := idx.Batch(batch); err != nil {
			b.Fatal(err)
		}
		objs = objs[n:]
	}
	return idx, time.Since(begin)
}

// buildBleveMeasured builds the baseline and measures it as buildOurs measures ours.
func buildBleveMeasured(b *testing.B, objs []bleveObj, gcPercent int) (bleve.Index, buildFigures) {
	m, err := wordsMapping()
	if err != nil {
		b.Fatal(err)
	}
	return measureBleve(b, m, objs, gcPercent, "bleve alone: a doc per object, words as-is")
}

// buildBleveNgramMeasured is the edge-ngram variant: every prefix of every word (1 to 20
// letters) is a term, so a prefix query would be a term query.
func buildBleveNgramMeasured(b *testing.B, objs []bleveObj, gcPercent int) (bleve.Index, buildFigures) {
	m, err := bleveMapping("weft_edge_ngram", map[string]any{
		"type":          custom.Name,
		"tokenizer":     whitespace.Name,
		"token_filters": []any{"weft_edge"},
	}, map[string]map[string]any{
		"weft_edge": {"type": edgengram.Name, "min": 1.0, "max": 20.0, "back": false},
	})
	if err != nil {
		b.Fatal(err)
	}
	return measureBleve(b, m, objs, gcPercent, "bleve alone: edge n-grams 1-20 of the words")
}

func measureBleve(b *testing.B, m mapping.IndexMapping, objs []bleveObj, gcPercent int, name string) (bleve.Index, buildFigures) {
	w := watchHeap(gcPercent)
	idx, took := buildBleveWith(b, m, objs)
	f := buildFigures{name: name, gcPercent: gcPercent, buildMS: ms(took), baseMiB: float64(w.base) / mib}
	f.allocMiB = w.allocMiB()
	f.peakMiB, f.gcs = w.stop()
	f.retainedMiB = w.retainedMiB()
	if adv, err := idx.Advanced(); err == nil {
		if mu, ok := adv.(interface{ MemoryUsed() uint64 }); ok {
			f.estMiB = float64(mu.MemoryUsed()) / mib
		}
	}
	n, err := idx.DocCount()
	if err != nil {
		b.Fatal(err)
	}
	segs := idx.StatsMap()["index"]
	if sm, ok := segs.(map[string]any); ok {
		f.note = fmt.Sprint("segments=", sm["num_root_memorysegments"])
	}
	if gcPercent == 0 {
		b.ReportMetric(f.buildMS, "build-ms")
		b.ReportMetric(f.allocMiB, "alloc-MiB")
	}
	b.ReportMetric(f.peakMiB, "peak-MiB")
	b.ReportMetric(float64(f.gcs), "GCs")
	b.ReportMetric(f.retainedMiB, "retained-MiB")
	b.ReportMetric(f.estMiB, "est-MiB")
	b.ReportMetric(float64(n), "docs")
	return idx, f
}

// bleveQuery is q as bleve alone would ask it.
func bleveQuery(q *giantQuery) query.Query {
	words := index.Words(q.text)
	conj := make([]query.Query, 0, len(words))
	for _, w := range words {
		if q.class == classTypo && utf8.RuneCountInString(w) >= 4 {
			fq := query.NewFuzzyQuery(w)
			fq.SetField(bleveField)
			fq.SetFuzziness(2)
			conj = append(conj, fq)
			continue
		}
		pq := query.NewPrefixQuery(w)
		pq.SetField(bleveField)
		conj = append(conj, pq)
	}
	if len(conj) == 1 {
		return conj[0]
	}
	return query.NewConjunctionQuery(conj)
}

func searchBleve(idx bleve.Index, q *giantQuery) (hits int, err error) {
	req := bleve.NewSearchRequestOptions(bleveQuery(q), 10, 0, false)
	res, err := idx.Search(req)
	if err != nil {
		return 0, err
	}
	return len(res.Hits), nil
}
