package client_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// TestTokenFuncRenewsExpiredSession: the edge ends a session when its token expires (goodbye
// token_expired); a Client with a TokenFunc reconnects at once with a fresh token and goes on
// serving, while one with a fixed Token is refused on reconnecting and stops, saying why.
func TestTokenFuncRenewsExpiredSession(t *testing.T) {
	s := newStack(t, "tiny", nil)
	user := s.activeUser()
	// A token inside the verifiers' 5 s leeway after its exp: it verifies now (with a second to
	// spare: exp is read to the whole second), and the edge ends its session within 2 s.
	expiring := func() string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "team": s.team,
			"exp": float64(time.Now().Add(-3*time.Second).UnixMilli()) / 1000}).SignedString([]byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var calls atomic.Int32
	var mu sync.Mutex
	var reasons []string
	c := s.dial(user, func(o *client.Options) {
		o.Token = ""
		o.TokenFunc = func(context.Context) (string, error) {
			if calls.Add(1) == 1 {
				return expiring(), nil
			}
			return s.token(user), nil
		}
		o.OnReconnect = func(r client.Reconnect) {
			if r.Goodbye != nil {
				mu.Lock()
				reasons = append(reasons, r.Goodbye.Reason)
				mu.Unlock()
			}
		}
	})
	first := c.Hello().Session
	testkit.Eventually(t, func() bool { return c.Hello().Session != first }, "a new session after the token expired")
	mu.Lock()
	got := append([]string(nil), reasons...)
	mu.Unlock()
	if calls.Load() < 2 || len(got) == 0 || got[0] != client.ReasonTokenExpired {
		t.Fatalf("TokenFunc called %d times, goodbyes %v; want a fresh token after goodbye token_expired", calls.Load(), got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.UsersInfo(ctx, user); err != nil {
		t.Fatalf("after renewing: %v", err)
	}

	fixed := s.dial(user, func(o *client.Options) { o.Token = expiring() })
	testkit.Eventually(t, func() bool { return fixed.Err() != nil }, "the client with an expired fixed token to stop")
	var e *client.Error
	if !errors.As(fixed.Err(), &e) || e.Code != client.CodeInvalidAuth {
		t.Fatalf("a fixed token that expired: %v, want invalid_auth", fixed.Err())
	}
}

// TestClientStopsWhenDeactivated: a user deactivated at the origin is told goodbye
// account_inactive; the Client does not reconnect (it would be refused) and stops, its Err
// saying why.
func TestClientStopsWhenDeactivated(t *testing.T) {
	s := newStack(t, "tiny", nil)
	user := s.activeUser()
	var reconnects atomic.Int32
	c := s.dial(user, func(o *client.Options) { o.OnReconnect = func(client.Reconnect) { reconnects.Add(1) } })
	if _, err := s.origin.UpdateUser(context.Background(), s.team, user, func(u *origin.User) { u.Deleted = true }); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool { return c.Err() != nil }, "the client of a deactivated user to stop")
	var e *client.Error
	if !errors.As(c.Err(), &e) || e.Code != client.CodeAccountInactive {
		t.Fatalf("Err %v, want account_inactive", c.Err())
	}
	if n := reconnects.Load(); n != 0 {
		t.Errorf("%d reconnects after goodbye account_inactive", n)
	}
}

// activeUser is the first user of the team after the first who is not deactivated.
func (s *stack) activeUser() string {
	for _, u := range s.origin.Users(s.team)[1:] {
		if !u.Deleted {
			return u.ID
		}
	}
	s.t.Fatalf("team %s has no active user but its first", s.team)
	return ""
}
