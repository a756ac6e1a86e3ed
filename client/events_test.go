package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/testkit"
)

// TestMethodFromEventsLoopAfterOverflow: the reader of Events falls behind until the queue
// overflows and the client drops its connection; then, from inside its Events loop, it calls
// a method. The run loop must not wait for the reader to drain the queue while the reader
// waits for a connection: the call completes, and every event still arrives once, in order.
func TestMethodFromEventsLoopAfterOverflow(t *testing.T) {
	const queue, flood = 8, 14 // the first connection overflows at the 9th message
	s := newStack(t, "small", nil)
	ch, members := s.busyChannel(4)
	overflowed := make(chan struct{})
	var once sync.Once
	c := s.dial(members[0], func(o *client.Options) {
		o.EventQueue = queue
		o.OnReconnect = func(r client.Reconnect) {
			if r.Err != nil && strings.Contains(r.Err.Error(), "event queue full") {
				once.Do(func() { close(overflowed) })
			}
		}
	})
	var want []int64
	for i := range flood {
		want = append(want, s.post(ch, members[1+i%3], fmt.Sprint("flood ", i)).Seq)
	}
	select {
	case <-overflowed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the queue of %d did not overflow with %d unread messages", queue, flood)
	}

	var got []int64
	for len(got) < flood {
		ev := next(t, c)
		if ev.Type != client.EventMessage {
			continue
		}
		got = append(got, ev.Seq)
		if len(got) == 1 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			info, err := c.UsersInfo(ctx, members[2])
			cancel()
			if err != nil {
				t.Fatalf("users.info from inside the Events loop after an overflow: %v", err)
			}
			if len(info.Users) != 1 || info.Users[0].ID != members[2] {
				t.Fatalf("users.info = %+v", info)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
}

// TestFailedBootIsRetried: a reconnect that cannot resume (hello resumed:false) must boot; when
// that boot fails, the connection after it boots, even though it resumes from the failed
// one's hello: until a boot has succeeded the Store does not have what the client missed.
func TestFailedBootIsRetried(t *testing.T) {
	s := newStack(t, "small", func(c *edge.Config) { c.MaxReplay = 10 })
	r := newRelay(s)
	ch, members := s.busyChannel(4)
	c := s.dial(members[0], func(o *client.Options) { o.URL = r.url })
	firstBoot := c.Boot()
	if st := c.Stats(); st.Boots != 1 {
		t.Fatalf("stats %+v after Dial: want 1 boot", st)
	}

	var bootsAsked atomic.Int64
	r.setHooks(relayHooks{toServer: func(f []byte) ([]byte, []byte) {
		if q := parseRequest(f); q.Method == "boot" && bootsAsked.Add(1) == 1 {
			return nil, errorReply(q.ID, client.CodeOriginUnavailable)
		}
		return f, nil
	}})
	// Keep the client away while it misses more than the edge will replay.
	watcher := s.dial(members[1], nil) // connected directly, to see the edge take them in
	r.refuse.Store(true)
	r.cut()
	var last int64
	for i := range 30 {
		last = s.post(ch, members[1+i%3], fmt.Sprint("missed ", i)).Seq
	}
	// The edge must be past them before the client comes back, or it could still replay
	// what it has seen so far: the watcher sees when it is.
	for ev := next(t, watcher); ev.Seq < last; ev = next(t, watcher) {
	}
	r.refuse.Store(false)

	testkit.EventuallyWithin(t, 20*time.Second, func() bool { return bootsAsked.Load() >= 1 }, "a boot asked for after the reconnect")
	// The failed boot's connection is never handed to requests: a ping goes out on a later
	// connection, once that one has booted (or, wrongly, skipped the boot).
	if err := c.Ping(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Boots != 2 || bootsAsked.Load() != 2 {
		t.Fatalf("stats %+v, %d boots asked for: want the failed boot done again (2 boots done)", st, bootsAsked.Load())
	}
	if b := c.Boot(); b == firstBoot || b.Seq < last {
		t.Errorf("boot seq %d after the outage, want at least %d", b.Seq, last)
	}
}

// TestUnreadableEventDoesNotLoop: an event whose envelope reads but whose body does not is
// handed over with its type and raw JSON only, and the stream goes on; before, the client
// reconnected, was replayed the same event and reconnected again forever. Annotation entries
// that are not the object they are keyed by are dropped, the good ones kept.
func TestUnreadableEventDoesNotLoop(t *testing.T) {
	s := newStack(t, "small", nil)
	r := newRelay(s)
	ch, members := s.busyChannel(8)
	me := members[0]
	c := s.dial(me, func(o *client.Options) { o.URL = r.url })
	u := others(t, s, c, ch, me, 3)
	a, b, d := u[0], u[1], u[2]

	badBody := `{"type":"message","channel":"` + ch + `","user":{"id":7},"text":"unreadable"}`
	r.setHooks(relayHooks{toClient: func(f []byte) []byte {
		return editFrame(f, func(m map[string]json.RawMessage) bool {
			var ev struct {
				Text string `json:"text"`
			}
			if string(m["type"]) != `"event"` || json.Unmarshal(m["event"], &ev) != nil {
				return false
			}
			switch ev.Text {
			case "two":
				m["event"] = json.RawMessage(badBody)
				return true
			case "three":
				var ann map[string]map[string]json.RawMessage
				json.Unmarshal(m["annotations"], &ann)
				if ann == nil {
					ann = map[string]map[string]json.RawMessage{}
				}
				for _, k := range []string{"users", "channels"} {
					if ann[k] == nil {
						ann[k] = map[string]json.RawMessage{}
					}
				}
				ann["users"]["U_IMPOSTOR"] = json.RawMessage(`{"id":"U_OTHER","name":"impostor"}`)
				ann["users"]["U_NULL"] = json.RawMessage(`null`)
				ann["users"]["U_NUMBER"] = json.RawMessage(`5`)
				ann["channels"]["C_STRING"] = json.RawMessage(`"x"`)
				m["annotations"], _ = json.Marshal(ann)
				return true
			}
			return false
		})
	}})
	s.post(ch, a, "one")
	s.post(ch, b, "two")
	s.post(ch, d, "three")

	if ev := nextOf(t, c, client.EventMessage); ev.Text != "one" || ev.UserID != a {
		t.Fatalf("first message %+v", ev)
	}
	ev := nextOf(t, c, client.EventMessage)
	if string(ev.Raw) != badBody || ev.UserID != "" || ev.Text != "" || ev.ChannelID != "" {
		t.Fatalf("unreadable message handed over as %+v (raw %s), want type and raw only", ev, ev.Raw)
	}
	// The edge attached b to it and will not again: the client must keep that.
	if _, ok := ev.Annotations.Users[b]; !ok {
		t.Errorf("annotations of the unreadable message %v, want %s kept", annotated(ev), b)
	}
	if _, ok := c.User(b); !ok {
		t.Errorf("%s, attached to the unreadable message, is not in the Store", b)
	}
	ev = nextOf(t, c, client.EventMessage)
	if ev.Text != "three" || ev.UserID != d {
		t.Fatalf("third message %+v", ev)
	}
	if got := annotated(ev); !slices.Equal(got, []string{d}) || len(ev.Annotations.Channels) != 0 {
		t.Errorf("annotations users %v channels %v, want only the good entry %s", got, ev.Annotations.Channels, d)
	}
	for _, id := range []string{"U_IMPOSTOR", "U_OTHER", "U_NULL", "U_NUMBER"} {
		if u, ok := c.User(id); ok {
			t.Errorf("Store holds %+v from a bad annotation entry", u)
		}
	}
	if !c.Store().Renderable(ev) {
		t.Error("third message not renderable from the Store")
	}
	if st := c.Stats(); st.Connects != 1 {
		t.Errorf("stats %+v: want the one connection kept", st)
	}
}
