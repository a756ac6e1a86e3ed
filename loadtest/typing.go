package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/client"
)

// The typing scenario: users type names into the Quick Switcher, one autocomplete request per
// keystroke, at human speed and faster, and the scenario measures the latency of every
// keystroke's answer and whether the name typed came up.

// TypingConfig configures RunTyping. Zero values are the defaults given.
type TypingConfig struct {
	Team string
	// Sessions type at once, each a different user; default 20. Words each types per speed;
	// default 10 (a user's or a channel's name, from the team).
	Sessions, Words int
	// Speeds are the times between keystrokes; default 150ms (a fast human), 50ms (faster
	// than anyone types), 0 (each keystroke as soon as the previous answer came).
	Speeds   []time.Duration
	Seed     uint64
	Progress io.Writer
}

// TypingSpeed is one speed's keystrokes.
type TypingSpeed struct {
	IntervalMS float64 `json:"interval_ms"`
	Keystrokes Dist    `json:"keystrokes"`
	Errors     int64   `json:"errors"`
	// Found is the share of words whose own object was among the results once the whole
	// word was typed.
	Found float64 `json:"found"`

	hist *Hist
}

// TypingFigures is what RunTyping measured.
type TypingFigures struct {
	Team       string         `json:"team"`
	Sessions   int            `json:"sessions"`
	Words      int            `json:"words_per_session"`
	Speeds     []*TypingSpeed `json:"speeds"`
	FirstError string         `json:"first_error,omitempty"`
}

type typingWord struct{ id, name string }

// RunTyping runs the typing scenario against t.
func RunTyping(ctx context.Context, t *Target, cfg TypingConfig) (*TypingFigures, error) {
	team, err := t.team(cfg.Team)
	if err != nil {
		return nil, err
	}
	cfg.Team = team
	cfg.Sessions = cmp.Or(cfg.Sessions, 20)
	cfg.Words = cmp.Or(cfg.Words, 10)
	if cfg.Speeds == nil {
		cfg.Speeds = []time.Duration{150 * time.Millisecond, 50 * time.Millisecond, 0}
	}
	words, users, err := typingWords(ctx, t, cfg.Team)
	if err != nil {
		return nil, err
	}
	if len(users) < cfg.Sessions {
		return nil, fmt.Errorf("loadtest: team %s has %d active users for %d sessions", cfg.Team, len(users), cfg.Sessions)
	}
	sessions, err := dialSessions(ctx, t, cfg.Team, users[:cfg.Sessions], 16)
	defer closeSessions(sessions)
	if err != nil {
		return nil, err
	}
	f := &TypingFigures{Team: cfg.Team, Sessions: cfg.Sessions, Words: cfg.Words}
	var typed atomic.Int64
	// Warm-up, not measured: each session types one name, so that the team's indexes are
	// built (the first search after a team load may wait for them) before the speeds run.
	var warm sync.WaitGroup
	for i, c := range sessions {
		warm.Go(func() { typeWord(ctx, c, words[i%len(words)], 0, NewHist(), new(atomic.Int64)) })
	}
	warm.Wait()
	stop := Progress(cfg.Progress, 2*time.Second, func() string {
		return fmt.Sprintf("typing: %d keystrokes answered", typed.Load())
	})
	defer stop()
	var errMu sync.Mutex
	for si, speed := range cfg.Speeds {
		sp := &TypingSpeed{IntervalMS: float64(speed.Microseconds()) / 1000, hist: NewHist()}
		f.Speeds = append(f.Speeds, sp)
		var found, errs atomic.Int64
		var wg sync.WaitGroup
		for i, c := range sessions {
			r := rand.New(rand.NewPCG(cfg.Seed, uint64(si*100_000+i)))
			wg.Go(func() {
				for range cfg.Words {
					w := words[r.IntN(len(words))]
					ok, err := typeWord(ctx, c, w, speed, sp.hist, &typed)
					if err != nil {
						errs.Add(1)
						errMu.Lock()
						if f.FirstError == "" {
							f.FirstError = err.Error()
						}
						errMu.Unlock()
						continue
					}
					if ok {
						found.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sp.Keystrokes = sp.hist.Dist()
		sp.Errors = errs.Load()
		sp.Found = float64(found.Load()) / float64(cfg.Sessions*cfg.Words)
	}
	return f, nil
}

// typeWord types w one keystroke at a time, every interval (0: each when the previous
// answer came), and says whether w's object was among the answers to the whole word. The
// keystrokes of one word overlap when answers take longer than the interval, as they do for a
// user typing.
func typeWord(ctx context.Context, c *client.Client, w typingWord, interval time.Duration, h *Hist,
	typed *atomic.Int64) (bool, error) {
	runes := []rune(w.name)
	var wg sync.WaitGroup
	var found atomic.Bool
	var firstErr atomic.Pointer[error]
	key := func(k int) {
		start := time.Now()
		res, err := c.Autocomplete(ctx, client.AutocompleteQuery{Query: string(runes[:k]), Limit: 10})
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		h.Record(time.Since(start))
		typed.Add(1)
		if k == len(runes) {
			for _, x := range res {
				if x.ID == w.id {
					found.Store(true)
				}
			}
		}
	}
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	for k := 1; k <= len(runes); k++ {
		if interval == 0 {
			key(k)
			continue
		}
		wg.Go(func() { key(k) })
		if k < len(runes) {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return false, *e
	}
	return found.Load(), ctx.Err()
}

// typingWords are the names users look for: active users by their name, and public channels
// that are not archived by theirs.
func typingWords(ctx context.Context, t *Target, team string) (words []typingWord, users []string, err error) {
	type named struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Deleted    bool   `json:"deleted"`
		IsPrivate  bool   `json:"is_private"`
		IsArchived bool   `json:"is_archived"`
	}
	us, err := originPages[named](ctx, t.HTTP, t.OriginURL, t.OriginToken, team, "users")
	if err != nil {
		return nil, nil, err
	}
	cs, err := originPages[named](ctx, t.HTTP, t.OriginURL, t.OriginToken, team, "channels")
	if err != nil {
		return nil, nil, err
	}
	for _, u := range us {
		if !u.Deleted && u.Name != "" {
			words = append(words, typingWord{u.ID, strings.ToLower(u.Name)})
			users = append(users, u.ID)
		}
	}
	for _, c := range cs {
		if !c.IsPrivate && !c.IsArchived && c.Name != "" {
			words = append(words, typingWord{c.ID, strings.ToLower(c.Name)})
		}
	}
	if len(words) == 0 {
		return nil, nil, errors.New("loadtest: a team without names to type")
	}
	return words, users, nil
}

// TypingReport is the typing scenario's report.
func TypingReport(f *TypingFigures, workload, command string) (*Report, error) {
	r := &Report{Scenario: "typing", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	r.Table = [][]string{{"between keystrokes", "keystrokes", "p50 (ms)", "p90 (ms)", "p99 (ms)", "p99.9 (ms)", "max (ms)", "found", "words failed"}}
	hists := map[string]*Hist{}
	var order []string
	for _, s := range f.Speeds {
		name := fmt.Sprintf("%.0f ms", s.IntervalMS)
		if s.IntervalMS == 0 {
			name = "no pause (after each answer)"
		}
		hists[name] = s.hist
		order = append(order, name)
		d := s.Keystrokes
		r.Table = append(r.Table, []string{name, fmt.Sprint(d.N), ms(d.P50), ms(d.P90), ms(d.P99), ms(d.P999), ms(d.Max),
			fmt.Sprintf("%.0f%%", 100*s.Found), fmt.Sprint(s.Errors)})
	}
	r.Notes = []string{"found: the typed user or channel was among the 10 results once its whole name was typed (a word with a failed keystroke counts as not found)"}
	if f.FirstError != "" {
		r.Notes = append(r.Notes, "first error: "+f.FirstError)
	}
	p, err := LatencyPlot("autocomplete latency per keystroke", hists, order)
	if err := r.addPlot("typing-latency.png", p, err); err != nil {
		return nil, err
	}
	return r, nil
}
