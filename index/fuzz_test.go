package index_test

import (
	"context"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
)

// Whatever a client types, a search answers without panicking, within the limit, and only with
// objects the caller may see.
func FuzzSearch(f *testing.F) {
	g := newGolden(f, index.Config{})
	f.Cleanup(g.x.Close)
	testkit.EventuallyWithin(f, time.Minute, g.x.FuzzyReady, "the typo fallback")
	for _, s := range []string{"jose nun", "jhon", "", " - _ .", "é", "\xff\xfe", "a b c d e f g h i j k l m n o p q r s",
		"marcsu smiht", "secret", "ZANZÍBAR", "日本語", "x\u0301\u0301"} {
		f.Add(s, "U01", 10, false)
	}
	visible := map[string]bool{}
	res, err := g.x.Search(context.Background(), index.Query{Text: "a b c d e f g h i j k l m n o p q r s t u v w x y z", Caller: "U01"})
	if err != nil || len(res) != 0 {
		f.Fatalf("26 one-letter words: %v, %v", res, err)
	}
	for _, c := range goldenChannels {
		visible[c.id] = !c.private || c.id == "C08" // U01 is in #salary-review only
	}
	f.Fuzz(func(t *testing.T, text, caller string, limit int, inactive bool) {
		q := index.Query{Text: text, Caller: caller, Limit: limit % 100, IncludeInactive: inactive}
		res, err := g.x.Search(context.Background(), q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		want := index.DefaultLimit
		if q.Limit > 0 {
			want = min(q.Limit, index.MaxLimit)
		}
		if len(res) > want {
			t.Fatalf("Search(%+v): %d results, limit %d", q, len(res), want)
		}
		for _, r := range res {
			if !utf8.ValidString(r.Label) || r.ID == "" {
				t.Fatalf("Search(%+v): bad result %+v", q, r)
			}
			if r.Type == "channel" && caller == "U01" && !visible[r.ID] {
				t.Fatalf("Search(%+v): U01 sees %s", q, r.ID)
			}
		}
	})
}
