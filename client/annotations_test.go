package client_test

import (
	"context"
	"slices"
	"testing"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/origin"
)

// Just-in-time annotations seen from the client (docs/protocol.md section 6): what the edge
// attaches, and that it lands in the Store.

// annotated returns the IDs of the users attached to ev.
func annotated(ev *client.Event) []string {
	var ids []string
	for id := range ev.Annotations.Users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// others returns members of ch other than me whom c does not know yet.
func others(t *testing.T, s *stack, c *client.Client, ch, me string, n int) []string {
	t.Helper()
	var out []string
	for _, u := range s.members(ch) {
		if u, ok := s.origin.User(s.team, u); !ok || u.Deleted {
			continue
		}
		if _, known := c.User(u); u != me && !known {
			out = append(out, u)
		}
		if len(out) == n {
			return out
		}
	}
	t.Fatalf("channel %s has fewer than %d members unknown to the client", ch, n)
	return nil
}

func TestAnnotationsCarryWhatTheClientLacks(t *testing.T) {
	s := newStack(t, "small", nil)
	ch, members := s.busyChannel(8)
	me := members[0]
	c := s.dial(me, nil)
	u := others(t, s, c, ch, me, 3)
	a, b, newcomer := u[0], u[1], u[2]

	// A message from a user the client has never seen carries that user; the channel came
	// with boot, so it is not attached again.
	s.post(ch, a, "hello")
	ev := nextOf(t, c, client.EventMessage)
	if got := annotated(ev); !slices.Equal(got, []string{a}) {
		t.Fatalf("first message of %s: annotated users %v, want [%s]", a, got, a)
	}
	if len(ev.Annotations.Channels) != 0 {
		t.Errorf("channel %s attached again after boot sent it: %v", ch, ev.Annotations.Channels)
	}
	if !c.Store().Renderable(ev) {
		t.Fatal("the message is not renderable from the Store after its annotations")
	}
	if got, ok := c.User(a); !ok || got.ID != a {
		t.Fatalf("User(%s) = %+v, %v after the annotation", a, got, ok)
	}

	// The same sender's next message carries nothing; mentions carry the mentioned user only.
	s.post(ch, a, "again")
	if ev := nextOf(t, c, client.EventMessage); ev.Annotations.Len() != 0 {
		t.Fatalf("second message of %s carries %v", a, annotated(ev))
	}
	s.post(ch, a, "hey <@"+b+"> and <@"+a+">", b, a)
	ev = nextOf(t, c, client.EventMessage)
	if got := annotated(ev); !slices.Equal(got, []string{b}) {
		t.Fatalf("mention of %s by %s: annotated %v, want [%s]", b, a, got, b)
	}

	// After a user_change the client has the new version: the next message does not resend it.
	if _, err := s.origin.UpdateUser(context.Background(), s.team, a, func(u *origin.User) {
		u.Title = "Chief Tester"
	}); err != nil {
		t.Fatal(err)
	}
	uc := nextOf(t, c, client.EventUserChange)
	if uc.User == nil || uc.User.ID != a || uc.User.Title != "Chief Tester" {
		t.Fatalf("user_change = %+v", uc.User)
	}
	if got, _ := c.User(a); got.Title != "Chief Tester" || got.Updated != uc.User.Updated {
		t.Fatalf("Store has %+v after the user_change", got)
	}
	s.post(ch, a, "new title")
	if ev := nextOf(t, c, client.EventMessage); ev.Annotations.Len() != 0 {
		t.Fatalf("message after user_change carries %v", annotated(ev))
	}

	// A session that connects now has seen nothing: the same sender is attached, at the new
	// version.
	c2 := s.dial(newcomer, nil)
	s.post(ch, a, "to the newcomer")
	ev = nextOf(t, c2, client.EventMessage)
	if got := ev.Annotations.Users[a]; got == nil || got.Title != "Chief Tester" {
		t.Fatalf("fresh session: annotation of %s = %+v", a, got)
	}
	if ev := nextOf(t, c, client.EventMessage); ev.Annotations.Len() != 0 {
		t.Fatalf("old session got %v with the newcomer's message", annotated(ev))
	}
}

// TestAnnotationsAfterEviction: with a record of 3 objects, a sender pushed out by three
// others is attached again.
func TestAnnotationsAfterEviction(t *testing.T) {
	s := newStack(t, "small", func(c *edge.Config) { c.JITObjects = 3 })
	ch, members := s.busyChannel(8)
	me := members[0]
	c := s.dial(me, nil)
	u := others(t, s, c, ch, me, 3)
	a, b, d := u[0], u[1], u[2]
	for i, sender := range []string{a, b, d} {
		s.post(ch, sender, "hi")
		ev := nextOf(t, c, client.EventMessage)
		if _, ok := ev.Annotations.Users[sender]; !ok {
			t.Fatalf("message %d: %s not attached (annotations %v)", i, sender, annotated(ev))
		}
	}
	// The record holds the channel, b and d now: a was evicted.
	s.post(ch, a, "back")
	ev := nextOf(t, c, client.EventMessage)
	if _, ok := ev.Annotations.Users[a]; !ok {
		t.Fatalf("%s evicted from a 3-object record but not attached again (annotations %v)", a, annotated(ev))
	}
	// ...and d, the most recent, still is not.
	s.post(ch, d, "still here")
	if ev := nextOf(t, c, client.EventMessage); ev.Annotations.Len() != 0 {
		t.Fatalf("%s attached again while recent: %v", d, annotated(ev))
	}
}
