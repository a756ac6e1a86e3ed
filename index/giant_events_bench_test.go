package index_test

// The user_change benchmark of the giant team: see giant_bench_test.go.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
)

// ---- user_change events ------------------------------------------------------------------------

const (
	eventsN                = 10_000
	eventSeed1, eventSeed2 = 0xc4a9, 0x6e5
)

// eventKind says what a user_change event changes.
const (
	evTitle   = iota // only the title: no word of the index changes
	evRename         // display and real name to another team member's words
	evNewWord        // display and real name, the last name a word the team never had
)

// giantUserEvents makes n user_change events for n distinct live users of st, each the user as
// st holds it with Updated raised, seqs from st.Seq()+1: half change only the title, half
// rename the display and real names (a third of those to a last name new to the team).
func giantUserEvents(srv *reference.Server, st *cache.Store, n int) (evs []*origin.Event, kinds []int) {
	team := st.ID()
	users := srv.Users(team)
	r := rand.New(rand.NewPCG(eventSeed1, eventSeed2))
	seen := make(map[int]bool, n)
	seq := st.Seq()
	for len(evs) < n {
		i := r.IntN(len(users))
		if seen[i] || users[i].Deleted {
			continue
		}
		seen[i] = true
		u, ok := st.User(users[i].ID)
		if !ok {
			continue
		}
		u.Updated += 1 + int64(len(evs))
		kind := evTitle
		if r.IntN(2) == 1 {
			kind = evRename
			if r.IntN(3) == 0 {
				kind = evNewWord
			}
		}
		switch kind {
		case evTitle:
			u.Title = fmt.Sprintf("Staff Engineer, Team %d", r.IntN(500))
		default:
			o := &users[r.IntN(len(users))]
			given, family := firstLast(o.RealName)
			if kind == evNewWord {
				family = newWord(r)
			}
			u.RealName = given + " " + family
			u.DisplayName = given
			if r.IntN(3) == 0 {
				u.DisplayName = ""
			}
		}
		seq++
		evs = append(evs, &origin.Event{Team: team, Seq: seq, Type: origin.EventUserChange, User: &u})
		kinds = append(kinds, kind)
	}
	return evs, kinds
}

func firstLast(realName string) (string, string) {
	f := strings.Fields(realName)
	if len(f) < 2 {
		return realName, "Kowalski"
	}
	return f[0], f[len(f)-1]
}

// newWord makes a pronounceable name that no culture of the world has ("Vabokuz").
func newWord(r *rand.Rand) string {
	const cons, vows = "BDFGKLMNPRSTVZ", "aeiou"
	var s strings.Builder
	for k := range 3 {
		c := cons[r.IntN(len(cons))]
		if k > 0 {
			c += 'a' - 'A'
		}
		s.WriteByte(c)
		s.WriteByte(vows[r.IntN(len(vows))])
	}
	s.WriteByte('z')
	return s.String()
}

// eventFigures are one engine's cost of the events.
type eventFigures struct {
	name             string
	totalMS          float64
	storeMS, indexMS float64
	perKind          [3][]time.Duration // index (or bleve) time per event, by kind
	all              []time.Duration    // the same in event order
	note             string
}

func BenchmarkGiantUserChange(b *testing.B) {
	srv, _ := giantStore(b)
	team := srv.TeamIDs()[0]
	var rows []eventFigures
	b.Run("store", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			st := storeOf(b, srv, team) // a fresh store: the shared one stays the original world
			evs, _ := giantUserEvents(srv, st, eventsN)
			runtime.GC()
			b.StartTimer()
			begin := time.Now()
			for _, ev := range evs {
				if _, ok := st.ApplyEvent(ev); !ok {
					b.Fatalf("event %d not applied", ev.Seq)
				}
			}
			f := eventFigures{name: "store alone", totalMS: ms(time.Since(begin))}
			f.storeMS = f.totalMS
			reportEvents(b, &f)
			rows = append(rows, f)
		}
	})
	b.Run("store+index", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			st := storeOf(b, srv, team)
			evs, kinds := giantUserEvents(srv, st, eventsN)
			x := index.New(st, index.Config{})
			<-x.Ready()
			testkit.EventuallyWithin(b, time.Minute, x.FuzzyReady, "the typo fallback")
			terms0 := x.Stats().Terms
			runtime.GC()
			b.StartTimer()
			f := eventFigures{name: "store + our index"}
			var store, idx time.Duration
			for k, ev := range evs {
				t0 := time.Now()
				ch, ok := st.ApplyEvent(ev)
				t1 := time.Now()
				if !ok {
					b.Fatalf("event %d not applied", ev.Seq)
				}
				x.Apply(ev, ch)
				d := time.Since(t1)
				store += t1.Sub(t0)
				idx += d
				f.perKind[kinds[k]] = append(f.perKind[kinds[k]], d)
				f.all = append(f.all, d)
			}
			b.StopTimer()
			f.storeMS, f.indexMS = ms(store), ms(idx)
			f.totalMS = f.storeMS + f.indexMS
			reportEvents(b, &f)
			b.ReportMetric(float64(x.Stats().Terms-terms0), "new-terms")
			checkRenamed(b, x, evs, kinds)
			x.Close()
			rows = append(rows, f)
		}
	})
	b.Run("bleve", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			st := storeOf(b, srv, team) // only to make the same events
			evs, kinds := giantUserEvents(srv, st, eventsN)
			st = nil
			idx, _ := buildBleve(b, giantObjects(srv))
			runtime.GC()
			b.StartTimer()
			f := eventFigures{name: "bleve alone (idx.Index per event)"}
			begin := time.Now()
			for k, ev := range evs {
				t := time.Now()
				if err := idx.Index(ev.User.ID, bleveUserDoc(ev.User)); err != nil {
					b.Fatal(err)
				}
				d := time.Since(t)
				f.perKind[kinds[k]] = append(f.perKind[kinds[k]], d)
				f.all = append(f.all, d)
			}
			f.totalMS = ms(time.Since(begin))
			f.indexMS = f.totalMS
			b.StopTimer()
			reportEvents(b, &f)
			if sm, ok := idx.StatsMap()["index"].(map[string]any); ok {
				f.note = fmt.Sprint("segments after: ", sm["num_root_memorysegments"], "; ")
			}
			_ = idx.Close()
			rows = append(rows, f)
		}
	})
	var t strings.Builder
	n := countKinds(srv, team)
	fmt.Fprintf(&t, "%d user_change events on the giant team: %d title only, %d renames to other members' words, %d renames with a new last name\n",
		eventsN, n[evTitle], n[evRename], n[evNewWord])
	fmt.Fprintf(&t, "%-36s %9s %9s %9s %9s | %-24s %-24s %-24s\n", "", "total ms", "µs/event", "store ms", "index ms",
		"index µs p50/p99/max:", "", "")
	fmt.Fprintf(&t, "%-76s | %-24s %-24s %-24s\n", "", "title only", "rename", "rename, new word")
	for _, r := range rows {
		fmt.Fprintf(&t, "%-36s %9.1f %9.2f %9.1f %9.1f |", r.name, r.totalMS, 1000*r.totalMS/eventsN, r.storeMS, r.indexMS)
		for _, ds := range r.perKind {
			fmt.Fprintf(&t, " %-24s", durPcts(ds))
		}
		if len(r.all) == eventsN {
			fmt.Fprintf(&t, " %sindex µs/event, first 1,000 events: %.1f, last 1,000: %.1f", r.note, meanUS(r.all[:1000]), meanUS(r.all[eventsN-1000:]))
		}
		t.WriteString("\n")
	}
	summary(b, t.String())
}

func countKinds(srv *reference.Server, team string) (n [3]int) {
	_, kinds := giantUserEvents(srv, storeOfUsers(srv, team), eventsN)
	for _, k := range kinds {
		n[k]++
	}
	return n
}

// storeOfUsers is a store with only the team's users: enough to make the events.
func storeOfUsers(srv *reference.Server, team string) *cache.Store {
	st := cache.NewStore(team)
	st.ApplyUsers(srv.Users(team))
	return st
}

func meanUS(ds []time.Duration) float64 {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return us(sum) / float64(len(ds))
}

func durPcts(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return fmt.Sprintf("%.1f / %.0f / %.0f", us(ds[len(ds)/2]), us(ds[len(ds)*99/100]), us(ds[len(ds)-1]))
}

func reportEvents(b *testing.B, f *eventFigures) {
	b.ReportMetric(f.totalMS, "total-ms")
	b.ReportMetric(1000*f.totalMS/eventsN, "µs/event")
	if f.storeMS > 0 {
		b.ReportMetric(f.storeMS, "store-ms")
	}
	if f.indexMS > 0 {
		b.ReportMetric(f.indexMS, "index-ms")
		b.ReportMetric(1000*f.indexMS/eventsN, "index-µs/event")
	}
}

// checkRenamed fails the benchmark if a user renamed to a new word is not found by it: the
// events must have reached the index.
func checkRenamed(b *testing.B, x *index.Index, evs []*origin.Event, kinds []int) {
	for k, ev := range evs {
		if kinds[k] != evNewWord {
			continue
		}
		_, family := firstLast(ev.User.RealName)
		res, err := x.Search(context.Background(), index.Query{Text: family, Caller: ev.User.ID})
		if err != nil {
			b.Fatal(err)
		}
		if !slices.ContainsFunc(res, func(r index.Result) bool { return r.ID == ev.User.ID }) {
			b.Errorf("renamed user %s not found by %q: %v", ev.User.ID, family, res)
		}
		return
	}
}
