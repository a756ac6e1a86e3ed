package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/origin"
)

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMethods goes through every method of docs/protocol.md section 4 and checks that objects in
// replies land in the Store.
func TestMethods(t *testing.T) {
	s := newStack(t, "tiny", nil)
	users := s.origin.Users(s.team)
	me := users[0].ID
	c := s.dial(me, nil)
	ctx := ctx10(t)

	b := c.Boot()
	if b == nil || b.Self.ID != me || b.Team.ID != s.team {
		t.Fatalf("boot = %+v, want self %s of team %s", b, me, s.team)
	}
	mine := s.origin.ChannelsOf(s.team, me)
	var booted []string
	for _, ch := range b.Channels {
		booted = append(booted, ch.ID)
		if _, ok := c.Channel(ch.ID); !ok {
			t.Errorf("booted channel %s is not in the Store", ch.ID)
		}
	}
	slices.Sort(mine)
	slices.Sort(booted)
	if !slices.Equal(mine, booted) {
		t.Errorf("boot channels %v, want the caller's %v", booted, mine)
	}
	if h := c.Hello(); h.User != me || h.Team != s.team || h.Resumed {
		t.Errorf("hello = %+v", h)
	}

	o := slices.IndexFunc(users[1:], func(u origin.User) bool { return !u.Deleted }) + 1
	other := users[o].ID
	if _, ok := c.User(other); ok {
		t.Fatalf("user %s known before anyone sent it", other)
	}
	info, err := c.UsersInfo(ctx, other, "U_NOPE")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Users) != 1 || info.Users[0].ID != other || !slices.Equal(info.Missing, []string{"U_NOPE"}) {
		t.Errorf("users.info = %+v", info)
	}
	if u, ok := c.User(other); !ok || u.Name != users[o].Name {
		t.Errorf("after users.info, User(%s) = %+v, %v", other, u, ok)
	}

	list, err := c.UsersList(ctx, "", 7)
	if err != nil || len(list.Users) != 7 || list.NextCursor == "" {
		t.Fatalf("users.list = %+v, %v", list, err)
	}
	if _, ok := c.User(list.Users[6].ID); !ok {
		t.Errorf("users.list's users are not in the Store")
	}

	ch := mine[0]
	ci, err := c.ChannelsInfo(ctx, ch)
	if err != nil || len(ci.Channels) != 1 || ci.Channels[0].ID != ch {
		t.Fatalf("channels.info = %+v, %v", ci, err)
	}
	members, err := c.ChannelsMembers(ctx, ch, "", 100)
	if err != nil || !slices.Contains(members.IDs, me) {
		t.Fatalf("channels.members = %+v, %v; want it to hold %s", members, err, me)
	}
	uc, err := c.UsersChannels(ctx, "", "", 100)
	if err != nil || !slices.Contains(uc.IDs, ch) {
		t.Fatalf("users.channels = %+v, %v", uc, err)
	}

	name := users[o].RealName
	res, err := c.Autocomplete(ctx, client.AutocompleteQuery{Query: name, Types: []string{"users"}, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res, func(r client.AutocompleteResult) bool { return r.ID == other }) {
		t.Errorf("autocomplete %q = %+v, want %s among them", name, res, other)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// A refusal comes back as *Error, the connection stays.
	_, err = c.UsersInfo(ctx)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeInvalidRequest {
		t.Fatalf("users.info with no users: %v, want invalid_request", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after an error reply: %v", err)
	}
	if st := c.Stats(); st.Connects != 1 || st.Boots != 1 || st.Requests < 10 {
		t.Errorf("stats = %+v", st)
	}
}

// TestDialRefused: a bad token fails Dial at once with invalid_auth, no retrying.
func TestDialRefused(t *testing.T) {
	s := newStack(t, "tiny", nil)
	o := s.opts(s.origin.Users(s.team)[0].ID)
	o.Token = "not-a-token"
	_, err := client.Dial(ctx10(t), o)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeInvalidAuth || e.Status != 401 {
		t.Fatalf("dial with a bad token: %v, want invalid_auth (HTTP 401)", err)
	}
	if n := s.edge.Handshakes(); n != 1 {
		t.Errorf("%d handshakes for a refused token, want 1", n)
	}
	for _, bad := range []string{"", "ftp://x/ws", "ws://", "::"} {
		o.URL = bad
		if _, err := client.Dial(ctx10(t), o); err == nil {
			t.Errorf("Dial(%q) succeeded", bad)
		}
	}
}

// TestCloseEndsEverything: Close closes Events and fails requests; nothing is left running
// (TestMain checks for leaked goroutines).
func TestCloseEndsEverything(t *testing.T) {
	s := newStack(t, "tiny", nil)
	c := s.dial(s.origin.Users(s.team)[0].ID, nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-c.Events(); ok {
		t.Error("Events still open after Close")
	}
	if err := c.Ping(ctx10(t)); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
	<-c.Done()
	if c.Err() != nil {
		t.Errorf("Err after Close = %v, want nil", c.Err())
	}
}

// TestCloseIsNotAReconnect: closing a client does not announce a reconnect.
func TestCloseIsNotAReconnect(t *testing.T) {
	s := newStack(t, "small", nil)
	var rec reconnects
	c := s.dial(s.origin.Users(s.team)[1].ID, func(o *client.Options) { o.OnReconnect = rec.add })
	c.Close()
	if rs := rec.all(); len(rs) != 0 {
		t.Fatalf("Close announced %d reconnects: %+v", len(rs), rs)
	}
}
