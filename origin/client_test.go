package origin_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
)

func newTestClient(t *testing.T, base, token string, guard origin.Guard) *origin.Client {
	t.Helper()
	c, err := origin.NewClient(origin.ClientConfig{BaseURL: base, Token: token, Timeout: 300 * time.Millisecond, Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.CloseIdleConnections(c) })
	return c
}

func TestClientReadsTheReferenceOrigin(t *testing.T) {
	srv, hs := serveReference(t, reference.ServerConfig{Token: "svc"})
	c := newTestClient(t, hs.URL, "svc", nil)
	ctx := context.Background()
	team := srv.TeamIDs()[0]
	ti, err := c.Team(ctx, team)
	if err != nil || ti.Team.ID != team {
		t.Fatalf("Team: %+v %v", ti, err)
	}
	var users []origin.User
	for cursor := ""; ; {
		p, err := c.UsersPage(ctx, team, cursor, 40)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, p.Users...)
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(users) != len(srv.Users(team)) {
		t.Fatalf("walked %d users, origin has %d", len(users), len(srv.Users(team)))
	}
	u, err := c.User(ctx, team, users[3].ID)
	if err != nil || *u != users[3] {
		t.Fatalf("User: %+v %v", u, err)
	}
	if _, err := c.User(ctx, team, "UNOSUCH01"); !errors.Is(err, origin.ErrNotFound) || origin.IsFailure(err) {
		t.Fatalf("absent user: %v", err)
	}
	if _, err := c.Team(ctx, "TNOSUCH01"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("absent team: %v", err)
	}
	bad := newTestClient(t, hs.URL, "wrong", nil)
	if _, err := bad.Team(ctx, team); !errors.Is(err, origin.ErrRejected) || origin.IsFailure(err) {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestClientTypesFailures(t *testing.T) {
	srv, hs := serveReference(t, reference.ServerConfig{})
	c := newTestClient(t, hs.URL, "", nil)
	team := srv.TeamIDs()[0]
	ctx := context.Background()
	for _, tc := range []struct {
		f    reference.Faults
		want error
	}{
		{reference.Faults{ErrorRate: 1}, origin.ErrUnavailable},
		{reference.Faults{Down: true}, origin.ErrUnavailable},
		{reference.Faults{Latency: 2 * time.Second}, origin.ErrTimeout},
	} {
		srv.SetFaults(tc.f)
		_, err := c.Team(ctx, team)
		var oe *origin.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &oe) || !origin.IsFailure(err) {
			t.Fatalf("faults %+v: %v, want %v", tc.f, err, tc.want)
		}
	}
	srv.SetFaults(reference.Faults{})
	// A caller that gives up is not the origin's failure.
	srv.SetFaults(reference.Faults{Latency: time.Second})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c.Team(cctx, team); origin.IsFailure(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: %v", err)
	}
	srv.SetFaults(reference.Faults{})
}

// refusingGuard stands in for the circuit breaker: it implements the same interface.
type refusingGuard struct {
	open  atomic.Bool
	calls atomic.Int64
	fails atomic.Int64
}

func (g *refusingGuard) Do(ctx context.Context, fn func(context.Context) error) error {
	if g.open.Load() {
		return &origin.Error{Op: "guard", Kind: origin.ErrUnavailable, Err: errors.New("circuit open")}
	}
	g.calls.Add(1)
	err := fn(ctx)
	if origin.IsFailure(err) {
		g.fails.Add(1)
	}
	return err
}

func TestClientGoesThroughTheGuard(t *testing.T) {
	srv, hs := serveReference(t, reference.ServerConfig{})
	g := &refusingGuard{}
	c := newTestClient(t, hs.URL, "", g)
	team := srv.TeamIDs()[0]
	ctx := context.Background()
	if _, err := c.Team(ctx, team); err != nil {
		t.Fatal(err)
	}
	srv.SetFaults(reference.Faults{ErrorRate: 1})
	if _, err := c.UsersPage(ctx, team, "", 10); !errors.Is(err, origin.ErrUnavailable) {
		t.Fatal(err)
	}
	srv.SetFaults(reference.Faults{})
	if _, err := c.User(ctx, team, "UNOSUCH01"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatal(err)
	}
	if g.calls.Load() != 3 || g.fails.Load() != 1 {
		t.Fatalf("guard saw %d calls, %d failures; want 3 and 1 (404 is no failure)", g.calls.Load(), g.fails.Load())
	}
	g.open.Store(true)
	if _, err := c.Team(ctx, team); !errors.Is(err, origin.ErrUnavailable) || g.calls.Load() != 3 {
		t.Fatalf("open guard: %v after %d calls", err, g.calls.Load())
	}
}
