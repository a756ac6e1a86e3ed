package ring

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// prober is a fake Probe: each node answers with answer(last), or, without one, is refused.
type prober struct {
	mu      sync.Mutex
	answers map[string]func(ctx context.Context, last Announcement) (Announcement, error)
	calls   map[string]int
	running int
	maxRun  int
}

func newProber() *prober {
	return &prober{answers: map[string]func(context.Context, Announcement) (Announcement, error){}, calls: map[string]int{}}
}

// alive makes node answer with its last announcement, edited by edit (nil: as it was).
func (p *prober) alive(node string, edit func(*Announcement)) {
	p.set(node, func(_ context.Context, last Announcement) (Announcement, error) {
		if edit != nil {
			edit(&last)
		}
		return last, nil
	})
}

func (p *prober) set(node string, f func(context.Context, Announcement) (Announcement, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[node] = f
}

func (p *prober) probe(ctx context.Context, last Announcement) (Announcement, error) {
	p.mu.Lock()
	p.calls[last.Node]++
	p.running++
	p.maxRun = max(p.maxRun, p.running)
	f := p.answers[last.Node]
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running--
		p.mu.Unlock()
	}()
	if f == nil {
		return Announcement{}, errors.New("connection refused")
	}
	return f(ctx, last)
}

func (p *prober) count(node string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[node]
}

// probed is a membership with a fake clock and p as its Probe; announcements of ann (100ms
// interval) and a MinTTL of 500ms make every TTL 500ms, and edges overdue after 200ms.
func probed(p *prober) (*Membership, *clock) {
	clk := &clock{t: time.Unix(1000, 0)}
	return NewMembership(MembershipConfig{Now: clk.now, MinTTL: 500 * time.Millisecond, Probe: p.probe,
		ProbeTimeout: time.Minute}), clk
}

// TestSilentEdgesKeptByProbes: NATS goes away for edges b and c, a still announces. b answers
// its probes and stays past its TTL, with the load figures it answers, and without a ring
// change; c answers none and leaves when its TTL is up, not before. a, heard all along, is
// never probed; b is probed once per announcement interval, not at every tick. When b is
// heard again the ring is still the same version.
func TestSilentEdgesKeptByProbes(t *testing.T) {
	p := newProber()
	m, clk := probed(p)
	for _, n := range []string{"a", "b", "c"} {
		m.Observe(ann(n, EdgeServing))
	}
	v0 := m.View().Version
	p.alive("b", func(a *Announcement) { a.Sessions = 42 })
	ctx := context.Background()
	tick := func() {
		clk.add(50 * time.Millisecond) // ticks at twice the announcement rate, as a proxy's do
		m.Expire()
		m.ProbeSilent(ctx)
	}
	for i := 1; i <= 40; i++ { // 2s: four TTLs
		if i%2 == 0 {
			m.Observe(ann("a", EdgeServing))
		}
		tick()
		v := m.View()
		switch {
		case i <= 10 && v.Ring.Key() != "a,b,c": // c's TTL ends at 500ms
			t.Fatalf("at +%dms: ring %q, want a,b,c until c's TTL is up", i*50, v.Ring.Key())
		case i >= 12 && v.Ring.Key() != "a,b":
			t.Fatalf("at +%dms: ring %q, want a,b once c's TTL is up", i*50, v.Ring.Key())
		}
	}
	v := m.View()
	if v.Version != v0+1 {
		t.Errorf("version %d, want %d: one change (c left), none for b", v.Version, v0+1)
	}
	if !slices.Equal(v.Probed, []string{"b"}) {
		t.Errorf("probed %v, want [b]", v.Probed)
	}
	if v.Edges["b"].Sessions != 42 {
		t.Errorf("b's load after its answers: %+v", v.Edges["b"])
	}
	if n := p.count("a"); n != 0 {
		t.Errorf("a, heard all along, was probed %d times", n)
	}
	// Overdue after 200ms, then once per 100ms interval until the end at 2s: 18 probes.
	if n := p.count("b"); n < 15 || n > 18 {
		t.Errorf("b was probed %d times in 1.8s of silence; want one per 100ms interval", n)
	}
	if n := p.count("c"); n < 1 || n > 4 {
		t.Errorf("c was probed %d times before it left", n)
	}

	m.Observe(ann("b", EdgeServing)) // NATS is back
	tick()
	v = m.View()
	if len(v.Probed) != 0 || v.Version != v0+1 || v.Ring.Key() != "a,b" {
		t.Fatalf("after b is heard again: probed %v, version %d (want %d), ring %q", v.Probed, v.Version, v0+1, v.Ring.Key())
	}
	before := p.count("b")
	for i := range 8 {
		if i%2 == 0 {
			m.Observe(ann("b", EdgeServing))
		}
		tick()
	}
	if p.count("b") != before {
		t.Error("b was still probed after it was heard again")
	}
}

// TestProbeBeforeDrop: a watcher whose own clock jumped past every TTL at once (a stalled
// proxy) asks each silent edge before it drops it: the one that answers stays, the one that
// does not leaves at the next expiry.
func TestProbeBeforeDrop(t *testing.T) {
	p := newProber()
	m, clk := probed(p)
	m.Observe(ann("a", EdgeServing))
	m.Observe(ann("b", EdgeServing))
	p.alive("a", nil)
	clk.add(10 * time.Second)
	m.Expire()
	if got := m.View().Ring.Key(); got != "a,b" {
		t.Fatalf("an edge left before it was asked: %q", got)
	}
	if got := m.View().Probed; !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("probed %v, want both while they wait for their verdicts", got)
	}
	m.ProbeSilent(context.Background())
	m.Expire()
	if got := m.View().Ring.Key(); got != "a" {
		t.Fatalf("after the probes: ring %q, want a", got)
	}
	if _, ok := m.View().Edges["b"]; ok {
		t.Fatal("b, which did not answer, is still an edge")
	}
}

// TestProbeAnswers: an answer is taken as an announcement is. A draining edge leaves the ring;
// a restarted one (new Started) stays and is no longer marked down; an answer from another
// node or address (another process listens there) counts as none; an answer that arrives
// after the edge was heard again is dropped (the announcement may be newer).
func TestProbeAnswers(t *testing.T) {
	p := newProber()
	m, clk := probed(p)
	for _, n := range []string{"drains", "restarted", "stranger", "moved"} {
		m.Observe(ann(n, EdgeServing))
	}
	p.alive("drains", func(a *Announcement) { a.State = EdgeDraining })
	p.alive("restarted", func(a *Announcement) { a.Started = time.Unix(2, 0) })
	p.alive("stranger", func(a *Announcement) { a.Node = "someone-else" })
	p.alive("moved", func(a *Announcement) { a.Addr = "127.0.0.1:2" })
	m.MarkDown("restarted")
	clk.add(300 * time.Millisecond)
	m.ProbeSilent(context.Background())
	v := m.View()
	if got := v.Ring.Key(); got != "moved,restarted,stranger" {
		t.Fatalf("ring %q: want the draining edge out and the restarted one back", got)
	}
	if v.Edges["drains"].State != EdgeDraining || !v.Edges["restarted"].Started.Equal(time.Unix(2, 0)) {
		t.Fatalf("answers not taken: %+v", v.Edges)
	}
	clk.add(300 * time.Millisecond) // past the TTL: the impostors' edges leave
	m.Expire()
	if got := m.View().Ring.Key(); got != "restarted" {
		t.Fatalf("after the TTL: ring %q, want only the restarted edge (the others' answers were not theirs)", got)
	}

	// An answer overtaken by an announcement.
	release := make(chan struct{})
	started := make(chan struct{})
	p.set("restarted", func(_ context.Context, last Announcement) (Announcement, error) {
		close(started)
		<-release
		last.State = EdgeDraining // an older word than the announcement below
		return last, nil
	})
	clk.add(300 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.ProbeSilent(context.Background())
	}()
	<-started
	clk.add(time.Millisecond)
	heard := ann("restarted", EdgeServing)
	heard.Started = time.Unix(2, 0)
	m.Observe(heard)
	close(release)
	<-done
	if got := m.View().Ring.Key(); got != "restarted" {
		t.Fatalf("an answer overtaken by an announcement was taken: ring %q", got)
	}
}

// TestProbesBoundedAndTimed: no more probes run at once than ProbeConcurrency; each gives up
// after ProbeTimeout, which counts as no answer; and when slots run short, the edges not asked
// yet go before those that failed, so every edge is asked within a few rounds.
func TestProbesBoundedAndTimed(t *testing.T) {
	p := newProber()
	clk := &clock{t: time.Unix(1000, 0)}
	m := NewMembership(MembershipConfig{Now: clk.now, MinTTL: 500 * time.Millisecond, Probe: p.probe,
		ProbeTimeout: 20 * time.Millisecond, ProbeConcurrency: 2})
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		m.Observe(ann(n, EdgeServing))
		p.set(n, func(ctx context.Context, _ Announcement) (Announcement, error) {
			<-ctx.Done() // a host that is gone: no answer, no refusal
			return Announcement{}, ctx.Err()
		})
	}
	clk.add(300 * time.Millisecond)
	for round := 1; round <= 3; round++ {
		m.ProbeSilent(context.Background())
		clk.add(100 * time.Millisecond)
	}
	p.mu.Lock()
	maxRun := p.maxRun
	p.mu.Unlock()
	if maxRun > 2 {
		t.Errorf("%d probes ran at once, limit 2", maxRun)
	}
	for _, n := range names {
		if p.count(n) == 0 {
			t.Errorf("%s never asked in 3 rounds of 2 slots", n)
		}
	}
	m.Expire() // +600ms: silent past the TTL, and every probe timed out
	if got := m.View().Ring.Key(); got != "" {
		t.Fatalf("edges whose probes timed out are still in the ring: %q", got)
	}
}

// TestRunStopsItsProbes: Run starts the probes itself and, when its context ends, returns only
// after they have.
func TestRunStopsItsProbes(t *testing.T) {
	p := newProber()
	m, clk := probed(p)
	m.Observe(ann("a", EdgeServing))
	asked := make(chan struct{})
	var once sync.Once
	ended := make(chan struct{})
	p.set("a", func(ctx context.Context, _ Announcement) (Announcement, error) {
		once.Do(func() { close(asked) })
		<-ctx.Done()
		close(ended)
		return Announcement{}, ctx.Err()
	})
	clk.add(300 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(ctx, time.Millisecond)
	}()
	<-asked
	cancel()
	<-ran
	select {
	case <-ended:
	default:
		t.Fatal("Run returned while its probe was still running")
	}
	if got := m.View().Ring.Key(); got != "a" {
		t.Fatalf("a probe cut short by the watcher's stop counted against the edge: ring %q", got)
	}
}
