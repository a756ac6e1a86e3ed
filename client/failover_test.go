package client_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
)

// Two regions in one process: the stack's edge behind one front (home) and a second edge on
// the same NATS and origin behind another (away). A team's events reach both edges from the
// same stream, with the same seqs, as they reach two edge regions.

// switches records every OnSwitch of a client.
type switches struct {
	mu   sync.Mutex
	list []client.Switch
}

func (r *switches) add(x client.Switch) {
	r.mu.Lock()
	r.list = append(r.list, x)
	r.mu.Unlock()
}

func (r *switches) all() []client.Switch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.Switch(nil), r.list...)
}

// regions is a stack with a second edge, each behind a front of its own.
func regions(t *testing.T, size string) (s *stack, home, away *front) {
	s = newStack(t, size, nil)
	return s, newFront(t, s.edge), newFront(t, s.addEdge("edge-away"))
}

// multi sets o up to dial home first and away second, with a quick backoff and return schedule.
func multi(o *client.Options, sw *switches, home, away *front) {
	o.URL = ""
	o.URLs = []string{home.url, away.url}
	o.OnSwitch = sw.add
	o.Backoff = client.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	o.Return = client.Return{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond}
}

// at says which URL c uses, for a condition.
func at(c *client.Client) int {
	i, _ := c.URL()
	return i
}

// TestFailoverAndReturnHome: the home region's address vanishes (connections cut, dials
// refused); the client moves to the other region and resumes there. The home region comes
// back with a new edge and an empty cache; the client moves home again, connecting there
// before it leaves the other. Every message, posted before, while away, during both moves and
// after, arrives exactly once and in order, and the client booted only once.
func TestFailoverAndReturnHome(t *testing.T) {
	s, home, away := regions(t, "small")
	ch, members := s.busyChannel(4)
	var sw switches
	var rec reconnects
	c := s.dial(members[0], func(o *client.Options) {
		multi(o, &sw, home, away)
		o.OnReconnect = rec.add
	})
	var want []int64
	post := func(phase string) {
		want = append(want, s.post(ch, members[1+len(want)%3], fmt.Sprintf("%s %d", phase, len(want))).Seq)
	}
	for range 20 {
		post("home")
	}
	if i, u := c.URL(); i != 0 || u != home.url {
		t.Fatalf("URL() = %d %s, want 0 %s", i, u, home.url)
	}

	home.down()
	s.restart(true) // behind the closed front: the region returns with a cold edge
	for range 20 {
		post("while moving away")
	}
	testkit.Eventually(t, func() bool { return at(c) == 1 && c.Hello().Node == "edge-away" }, "the client on the other region")
	for range 20 {
		post("away")
	}

	waits := len(rec.all())
	home.up()
	// Posting on while the client moves home: its last events come from the other region as
	// home replays the same ones.
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		post("while moving home")
		return at(c) == 0 && c.Stats().Returns == 1
	}, "the client back home")
	if n := len(rec.all()) - waits; n != 0 {
		t.Errorf("%d reconnect waits while moving home: the client should connect home before it leaves", n)
	}
	for range 20 {
		post("back")
	}

	got := collect(t, c, len(want))
	for i, ev := range got {
		if ev.Seq != want[i] {
			t.Fatalf("message %d: seq %d, want %d", i, ev.Seq, want[i])
		}
	}
	if err := c.Ping(ctx10(t)); err != nil {
		t.Fatalf("ping at home: %v", err)
	}
	if h := c.Hello(); h.Node != "edge-client-test" || !h.Resumed {
		t.Errorf("hello %+v: want a resume on the home edge", h)
	}
	st := c.Stats()
	if st.Failovers != 1 || st.Returns != 1 || st.Boots != 1 || st.Resumes != st.Connects-1 {
		t.Errorf("stats %+v: want 1 failover, 1 return, every reconnect resumed and one boot", st)
	}
	sws := sw.all()
	if len(sws) != 2 || sws[0].From != 0 || sws[0].To != 1 || sws[0].URL != away.url || sws[0].Err == nil ||
		sws[1].From != 1 || sws[1].To != 0 || sws[1].URL != home.url || sws[1].Err != nil {
		t.Fatalf("switches %+v: want 0→1 for an error, then 1→0", sws)
	}
	t.Logf("%d messages, %d events dropped as duplicates; away: %v", len(want), st.Duplicates, sws[0].Err)
}

// TestHomeUnreachableAtDial: Dial finds the home region unreachable in each way a region can
// be, moves to the other, and goes home once home answers again. A load balancer's own 502 is
// unreachable; nothing answering within DialTimeout is too.
func TestHomeUnreachableAtDial(t *testing.T) {
	for _, mode := range []string{"down", "gateway", "silent"} {
		t.Run(mode, func(t *testing.T) {
			s, home, away := regions(t, "tiny")
			switch mode {
			case "down":
				home.down()
			default:
				home.setMode(mode)
			}
			var sw switches
			c := s.dial(s.origin.Users(s.team)[0].ID, func(o *client.Options) {
				multi(o, &sw, home, away)
				o.DialTimeout = 2 * time.Second
			})
			if at(c) != 1 || c.Hello().Node != "edge-away" {
				t.Fatalf("dialed at %d, node %s: want the other region", at(c), c.Hello().Node)
			}
			sws := sw.all()
			if len(sws) != 1 || sws[0].To != 1 || sws[0].Err == nil {
				t.Fatalf("switches %+v: want one move to the other region", sws)
			}
			var e *client.Error
			if isErr := errors.As(sws[0].Err, &e); isErr != (mode == "gateway") || isErr && e.Status != 502 {
				t.Errorf("moved for %v: want the gateway's 502 only in gateway mode", sws[0].Err)
			}
			if mode != "down" {
				// Home is tried again on the return schedule (a refused dial leaves no trace
				// to count, the others do) and the client stays where it works.
				before := home.accepted.Load()
				testkit.Eventually(t, func() bool { return home.accepted.Load() >= before+2 }, "return attempts at home")
				if at(c) != 1 || c.Stats().Connects != 1 {
					t.Fatalf("at %d after %d connects: the client left a working connection for a home that does not answer", at(c), c.Stats().Connects)
				}
			}

			home.up()
			testkit.Eventually(t, func() bool { return at(c) == 0 }, "the client back home")
			if err := c.Ping(ctx10(t)); err != nil {
				t.Fatal(err)
			}
			if h := c.Hello(); h.Node != "edge-client-test" || !h.Resumed {
				t.Errorf("hello %+v: want a resume at home", h)
			}
			if st := c.Stats(); st.Failovers != 1 || st.Returns != 1 || st.Boots != 1 {
				t.Errorf("stats %+v: want one failover, one return, one boot", st)
			}
		})
	}
}

// TestOverloadedDoesNotFailOver: the home edge refuses with weft's own 503 overloaded and
// Retry-After (a region that is up, telling its clients when to come back). The client waits
// and retries home; it never dials the other region.
func TestOverloadedDoesNotFailOver(t *testing.T) {
	s, home, away := regions(t, "tiny")
	var sw switches
	var mu sync.Mutex
	refused := 0
	enough := make(chan struct{})
	c := s.dial(s.origin.Users(s.team)[0].ID, func(o *client.Options) {
		multi(o, &sw, home, away)
		o.OnReconnect = func(r client.Reconnect) {
			var e *client.Error
			if !errors.As(r.Err, &e) || e.Status != 503 || e.Code != client.CodeOverloaded {
				return
			}
			if r.URL != home.url {
				t.Errorf("reconnecting to %s after a 503 from home", r.URL)
			}
			mu.Lock()
			defer mu.Unlock()
			if refused++; refused == 2 {
				close(enough)
			}
		}
	})
	before := s.edge.Handshakes()
	s.edge.Crash() // its listener answers 503 overloaded, Retry-After: 1
	select {
	case <-enough:
	case <-time.After(20 * time.Second):
		t.Fatal("fewer than two 503s from home in 20s")
	}
	if n := s.edge.Handshakes() - before; n < 2 {
		t.Errorf("%d handshakes at home after the crash, want the retries there", n)
	}
	s.stopEdge(false)
	s.startEdge()
	if err := c.Ping(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if i := at(c); i != 0 {
		t.Errorf("at URL %d, want home", i)
	}
	if st := c.Stats(); st.Failovers != 0 {
		t.Errorf("stats %+v: a 503 overloaded made the client fail over", st)
	}
	if sws := sw.all(); len(sws) != 0 {
		t.Errorf("switches %+v, want none", sws)
	}
	if n := away.accepted.Load(); n != 0 {
		t.Errorf("%d connections reached the other region", n)
	}
}

// TestURLsValidated: a bad list of URLs fails Dial at once with an error that names the entry.
func TestURLsValidated(t *testing.T) {
	for _, tc := range []struct {
		url  string
		urls []string
		want string
	}{
		{"", nil, "Options.URL or Options.URLs is required"},
		{"ws://a/ws", []string{"ws://b/ws"}, "not both"},
		{"", []string{"ws://a/ws", ""}, "Options.URLs[1] is empty"},
		{"", []string{"ws://a/ws", "ftp://b/ws"}, `Options.URLs[1]: URL "ftp://b/ws": scheme must be`},
		{"", []string{"ws://", "ws://b"}, `Options.URLs[0]: URL "ws://" has no host`},
		{"", []string{"ws://a:1/ws", "ws://b/ws", "http://A:1"}, `Options.URLs[2] "http://A:1" is Options.URLs[0] "ws://a:1/ws" again`},
	} {
		_, err := client.Dial(ctx10(t), client.Options{URL: tc.url, URLs: tc.urls, Token: "x"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("URL %q URLs %q: error %v, want one with %q", tc.url, tc.urls, err, tc.want)
		}
	}
}
