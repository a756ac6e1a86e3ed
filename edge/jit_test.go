package edge

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/weft-edge/weft/origin"
)

// annotated returns the IDs of the users and channels attached to event frame f.
func annotated(f frame) (users, chans []string) {
	if f.Annotations == nil {
		return nil, nil
	}
	users = slices.Sorted(maps.Keys(f.Annotations.Users))
	chans = slices.Sorted(maps.Keys(f.Annotations.Channels))
	return users, chans
}

// jitStack is a harness, a connected client, and helpers to post and receive its next event.
type jitStack struct {
	*harness
	c       *wsClient
	general string
	active  []origin.User // users who can post
}

func newJITStack(t *testing.T, opts harnessOpts) *jitStack {
	h := newHarness(t, opts)
	j := &jitStack{harness: h, general: h.origin.Channels(h.team)[0].ID}
	for _, u := range h.origin.Users(h.team) {
		if !u.Deleted {
			j.active = append(j.active, u)
		}
	}
	j.c = h.dial(h.team, j.active[0].ID, "")
	return j
}

// post makes the origin publish ev and returns the frame the client gets for it.
func (j *jitStack) post(ev *origin.Event, err error) frame {
	j.t.Helper()
	ev = j.must(ev, err)
	return j.c.waitFrame("event", func(f frame) bool { return f.Type == "event" && f.Seq == ev.Seq })
}

func (j *jitStack) message(from string, mentions ...string) frame {
	j.t.Helper()
	return j.post(j.origin.PostMessage(context.Background(), j.team, j.general, from, "hi", mentions))
}

func expectAnnotations(t *testing.T, what string, f frame, users, chans []string) {
	t.Helper()
	gu, gc := annotated(f)
	if !slices.Equal(gu, users) || !slices.Equal(gc, chans) {
		t.Fatalf("%s: annotated users %v channels %v, want %v and %v\n%s", what, gu, gc, users, chans, f.raw)
	}
}

func TestJITAnnotations(t *testing.T) {
	j := newJITStack(t, harnessOpts{})
	a, b, c := j.active[1], j.active[2], j.active[3]

	f := j.message(a.ID)
	expectAnnotations(t, "first message from a", f, []string{a.ID}, []string{j.general})
	if got := f.Annotations.Users[a.ID]; got.Name != a.Name || got.Updated != a.Updated {
		t.Fatalf("the annotation is not the current user: %+v", got)
	}
	expectAnnotations(t, "second message from a", j.message(a.ID), nil, nil)
	expectAnnotations(t, "a mentions b and c", j.message(a.ID, b.ID, c.ID), []string{b.ID, c.ID}, nil)

	// A user_change reaches every session: it carries the new version, so the next message
	// does not send it again.
	ev := j.post(j.origin.UpdateUser(context.Background(), j.team, a.ID, func(u *origin.User) { u.DisplayName = "Renamed" }))
	expectAnnotations(t, "the user_change itself", ev, nil, nil)
	expectAnnotations(t, "message after a's change", j.message(a.ID), nil, nil)

	// What a reply sent counts as seen.
	d := j.active[4]
	var info usersInfoResult
	j.c.call("users.info", map[string]any{"users": []string{d.ID}}, &info)
	expectAnnotations(t, "message from a user users.info returned", j.message(d.ID), nil, nil)
}

// A session that never saw a user's change (it connected after) gets the new version.
func TestJITNewerVersionIsSentAgain(t *testing.T) {
	j := newJITStack(t, harnessOpts{})
	a := j.active[1]
	expectAnnotations(t, "first message", j.message(a.ID), []string{a.ID}, []string{j.general})
	// The change happens while the client is away: a fresh session does not know a.
	j.c.close()
	ch := j.must(j.origin.UpdateUser(context.Background(), j.team, a.ID, func(u *origin.User) { u.Title = "Changed" }))
	// The node must have applied the change before the new session starts: otherwise the
	// change is the new session's first event, carries a, and rightly leaves the message bare.
	j.applied(j.team, ch.Seq)
	j.c = j.dial(j.team, j.active[0].ID, "")
	f := j.message(a.ID)
	expectAnnotations(t, "a fresh session", f, []string{a.ID}, []string{j.general})
	if f.Annotations.Users[a.ID].Title != "Changed" {
		t.Fatalf("annotation is not the current version: %+v", f.Annotations.Users[a.ID])
	}
}

// After the record evicts a user, the user is sent again.
func TestJITEviction(t *testing.T) {
	j := newJITStack(t, harnessOpts{edge: func(c *Config) { c.JITObjects = 3 }})
	a := j.active[1]
	expectAnnotations(t, "first", j.message(a.ID), []string{a.ID}, []string{j.general})
	expectAnnotations(t, "again", j.message(a.ID), nil, nil)
	// Three other senders push a and #general out of a record of three.
	for _, u := range j.active[2:5] {
		j.message(u.ID)
	}
	f := j.message(a.ID)
	if users, _ := annotated(f); !slices.Contains(users, a.ID) {
		t.Fatalf("after eviction a must be attached again: %s", f.raw)
	}
}

func TestAnnotateModes(t *testing.T) {
	for _, mode := range []AnnotateMode{AnnotateNever, AnnotateAlways} {
		j := newJITStack(t, harnessOpts{edge: func(c *Config) { c.Annotate = mode }})
		a := j.active[1]
		for range 2 {
			f := j.message(a.ID)
			if mode == AnnotateNever {
				expectAnnotations(t, "never", f, nil, nil)
			} else {
				expectAnnotations(t, "always", f, []string{a.ID}, []string{j.general})
			}
		}
	}
}

// Replayed events carry every object they name: the record cannot be trusted for events that
// go on the wire ahead of live ones.
func TestJITReplayCarriesObjects(t *testing.T) {
	j := newJITStack(t, harnessOpts{})
	a, b := j.active[1], j.active[2]
	last := j.message(a.ID)
	j.c.close()
	ev := j.must(j.origin.PostMessage(context.Background(), j.team, j.general, b.ID, "while you were away", []string{a.ID}))
	j.applied(j.team, ev.Seq)
	j.c = j.dial(j.team, j.active[0].ID, "since="+strconv.FormatInt(last.Seq, 10))
	f := j.c.waitFrame("replayed event", func(f frame) bool { return f.Type == "event" && f.Seq == ev.Seq })
	expectAnnotations(t, "replayed message", f, []string{a.ID, b.ID}, []string{j.general})
	expectAnnotations(t, "live message after the replay", j.message(b.ID), nil, nil)
}
