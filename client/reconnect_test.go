package client_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
)

// reconnects records every OnReconnect of a client.
type reconnects struct {
	mu   sync.Mutex
	list []client.Reconnect
}

func (r *reconnects) add(x client.Reconnect) {
	r.mu.Lock()
	r.list = append(r.list, x)
	r.mu.Unlock()
}

func (r *reconnects) all() []client.Reconnect {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.Reconnect(nil), r.list...)
}

// collect reads message events of c until it has n, failing on a duplicate or an event out of
// order.
func collect(t *testing.T, c *client.Client, n int) []*client.Event {
	t.Helper()
	var got []*client.Event
	last := int64(0)
	for len(got) < n {
		ev := next(t, c)
		if ev.Seq <= last {
			t.Fatalf("event seq %d after %d: duplicate or out of order", ev.Seq, last)
		}
		last = ev.Seq
		if ev.Type == client.EventMessage {
			got = append(got, ev)
		}
	}
	return got
}

// TestReconnectAfterGracefulRestart: the node drains (goodbye draining with a
// reconnect_after_ms), a new node takes its place; the client waits what it was told,
// reconnects, resumes, and its requests work again.
func TestReconnectAfterGracefulRestart(t *testing.T) {
	s := newStack(t, "small", nil)
	ch, members := s.busyChannel(4)
	var rec reconnects
	c := s.dial(members[0], func(o *client.Options) { o.OnReconnect = rec.add })
	s.post(ch, members[1], "before")
	collect(t, c, 1)

	s.restart(false)
	s.post(ch, members[1], "after")
	collect(t, c, 1)
	if err := c.Ping(ctx10(t)); err != nil {
		t.Fatalf("ping after reconnect: %v", err)
	}
	st := c.Stats()
	if st.Connects != 2 || st.Resumes != 1 || st.Boots != 1 {
		t.Errorf("stats %+v: want 2 connects, 1 resumed, 1 boot", st)
	}
	rs := rec.all()
	if len(rs) == 0 || rs[0].Goodbye == nil || rs[0].Goodbye.Reason != client.ReasonDraining {
		t.Fatalf("reconnects %+v: want the first after a goodbye draining", rs)
	}
	if want := time.Duration(rs[0].Goodbye.ReconnectAfterMS) * time.Millisecond; rs[0].Wait != want || want <= 0 {
		t.Errorf("waited %v after goodbye reconnect_after_ms %v", rs[0].Wait, want)
	}
}

// TestResumeLosesNothing: messages posted before, during and after a crash of the node (every
// connection cut, no goodbye, a new node with an empty cache) all arrive, once each, in order.
func TestResumeLosesNothing(t *testing.T) {
	s := newStack(t, "small", nil)
	ch, members := s.busyChannel(4)
	c := s.dial(members[0], nil)

	var want []int64
	post := func(n int, phase string) {
		for i := range n {
			want = append(want, s.post(ch, members[1+i%3], fmt.Sprintf("%s %d", phase, i)).Seq)
		}
	}
	post(50, "before")
	s.stopEdge(true)
	post(50, "while down")
	s.startEdge()
	post(50, "after")

	got := collect(t, c, len(want))
	for i, ev := range got {
		if ev.Seq != want[i] {
			t.Fatalf("message %d: seq %d, want %d", i, ev.Seq, want[i])
		}
	}
	st := c.Stats()
	if st.Connects < 2 || st.Resumes != st.Connects-1 || st.Boots != 1 {
		t.Errorf("stats %+v: want every reconnect resumed and a single boot", st)
	}
}

// TestResumeTooFarBootsAgain: when the node cannot replay that far it says resumed false; the
// client boots again and goes on with the live stream, handing nothing over twice.
func TestResumeTooFarBootsAgain(t *testing.T) {
	s := newStack(t, "small", func(c *edge.Config) { c.MaxReplay = 10 })
	ch, members := s.busyChannel(4)
	boots := make(chan *client.Boot, 4)
	c := s.dial(members[0], func(o *client.Options) { o.OnBoot = func(b *client.Boot) { boots <- b } })
	<-boots
	s.post(ch, members[1], "first")
	first := collect(t, c, 1)[0]

	s.stopEdge(true)
	for i := range 30 {
		s.post(ch, members[2], fmt.Sprint("missed ", i))
	}
	s.startEdge()
	select {
	case <-boots:
	case <-time.After(20 * time.Second):
		t.Fatal("no second boot after an unresumable reconnect")
	}
	if h := c.Hello(); h.Resumed {
		t.Fatalf("hello %+v: resumed past MaxReplay", h)
	}
	last := s.post(ch, members[3], "live")
	for {
		ev := next(t, c)
		if ev.Seq <= first.Seq {
			t.Fatalf("event %d handed over again", ev.Seq)
		}
		if ev.Seq == last.Seq {
			break
		}
	}
	if st := c.Stats(); st.Boots != 2 {
		t.Errorf("stats %+v: want 2 boots", st)
	}
}

// TestRetryAfterHonoured: while the node is away the endpoint answers 503 Retry-After: 1; the
// client waits at least that, plus jitter, and connects once a node is back.
func TestRetryAfterHonoured(t *testing.T) {
	s := newStack(t, "tiny", nil)
	var rec reconnects
	gotRefused := make(chan struct{})
	var once sync.Once
	c := s.dial(s.origin.Users(s.team)[0].ID, func(o *client.Options) {
		o.OnReconnect = func(r client.Reconnect) {
			rec.add(r)
			var e *client.Error
			if errors.As(r.Err, &e) && e.Status == 503 {
				once.Do(func() { close(gotRefused) })
			}
		}
	})
	s.stopEdge(true)
	<-gotRefused
	s.startEdge()
	if err := c.Ping(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, r := range rec.all() {
		var e *client.Error
		if errors.As(r.Err, &e) && e.Status == 503 {
			refused++
			if r.Wait < time.Second || r.Wait >= time.Second+2*time.Second {
				t.Errorf("after a 503 Retry-After: 1 the client waits %v; want 1s plus at most the backoff window", r.Wait)
			}
		}
	}
	if refused == 0 {
		t.Fatal("no reconnect after a 503 recorded")
	}
}

// TestResumeFromSeqZero: a team that has had no event yet puts a client at seq 0. After a crash
// the client must still resume (since=0), not boot again, and get what was published while it
// was away.
func TestResumeFromSeqZero(t *testing.T) {
	s := newStack(t, "small", nil)
	ch, members := s.busyChannel(2)
	c := s.dial(members[0], nil)
	if h := c.Hello(); h.Seq != 0 {
		t.Fatalf("hello seq %d: the team was expected to have no event yet", h.Seq)
	}
	s.restart(true)
	s.post(ch, members[1], "while away")
	got := collect(t, c, 1)
	if got[0].Text != "while away" {
		t.Fatalf("got %+v", got[0])
	}
	if st := c.Stats(); st.Resumes != 1 || st.Boots != 1 {
		t.Fatalf("stats %+v: want the reconnect resumed from 0, one boot in all", st)
	}
}
