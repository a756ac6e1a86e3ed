package client_test

import (
	"context"
	"encoding/json"
	"errors"
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

// TestBackoffGrowsWhileBootHangs: boot never answers, so every connection ends when the boot
// times out, after DialTimeout, which is as long as StableAfter. Such a connection was never
// up: each one is one more failed attempt, and the backoff grows instead of starting over.
func TestBackoffGrowsWhileBootHangs(t *testing.T) {
	s := newStack(t, "tiny", nil)
	r := newRelay(s)
	r.setHooks(relayHooks{toServer: func(f []byte) ([]byte, []byte) {
		if parseRequest(f).Method == "boot" {
			return nil, nil
		}
		return f, nil
	}})
	var mu sync.Mutex
	var attempts []int
	enough := make(chan struct{})
	o := s.opts(s.origin.Users(s.team)[0].ID)
	o.URL = r.url
	o.DialTimeout = 300 * time.Millisecond
	o.Backoff = client.Backoff{Min: 50 * time.Millisecond, Max: 10 * time.Second, StableAfter: 300 * time.Millisecond}
	o.OnReconnect = func(x client.Reconnect) {
		mu.Lock()
		defer mu.Unlock()
		if attempts = append(attempts, x.Attempt); len(attempts) == 4 {
			close(enough)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		c, err := client.Dial(ctx, o)
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	select {
	case <-enough:
	case <-time.After(20 * time.Second):
		t.Fatal("fewer than 4 reconnects in 20s")
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("Dial succeeded although boot never answers")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 2, 3, 4}; !slices.Equal(attempts[:4], want) {
		t.Fatalf("attempts %v while every boot hangs, want %v: a connection that never finished its boot is not stable", attempts, want)
	}
}

// TestCloseAfterResumedFirstHello: a server that says resumed:true on the first connection
// (and again on every later one) must not leave the run loop stuck reporting a first
// connection nobody waits for: Close returns.
func TestCloseAfterResumedFirstHello(t *testing.T) {
	s := newStack(t, "tiny", nil)
	r := newRelay(s)
	r.setHooks(relayHooks{toClient: func(f []byte) []byte {
		return editFrame(f, func(m map[string]json.RawMessage) bool {
			if string(m["type"]) != `"hello"` {
				return false
			}
			m["resumed"] = json.RawMessage("true")
			return true
		})
	}})
	o := s.opts(s.origin.Users(s.team)[0].ID)
	o.URL = r.url
	c, err := client.Dial(ctx10(t), o)
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(2); n <= 3; n++ {
		r.cut()
		testkit.Eventually(t, func() bool { return c.Stats().Connects >= n }, "reconnected")
	}
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return in 10s")
	}
}

// TestWaitingCallGetsTerminalError: a request waiting for a connection when the client stops
// on its own (the server refuses its token on a reconnect) fails with that refusal, as Err
// says, not with ErrClosed.
func TestWaitingCallGetsTerminalError(t *testing.T) {
	s := newStack(t, "tiny", nil)
	r := newRelay(s)
	user := s.origin.Users(s.team)[0].ID
	good := s.token(user)
	var badToken atomic.Bool
	refused := make(chan struct{}, 1)
	c := s.dial(user, func(o *client.Options) {
		o.URL, o.Token = r.url, ""
		o.TokenFunc = func(context.Context) (string, error) {
			if badToken.Load() {
				return "not-a-token", nil
			}
			return good, nil
		}
		o.OnReconnect = func(client.Reconnect) {
			select {
			case refused <- struct{}{}:
			default:
			}
		}
	})
	// From the cut on every dial carries the bad token, and the relay refuses them (503,
	// retried) until the ping waits.
	badToken.Store(true)
	r.refuse.Store(true)
	r.cut()
	select {
	case <-refused:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect after the cut")
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Ping(ctx10(t)) }()
	testkit.Eventually(t, func() bool { return client.Waiting(c) > 0 }, "the ping waiting for a connection")
	r.refuse.Store(false)

	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting ping did not return in 10s")
	}
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeInvalidAuth || e.Status != 401 {
		t.Fatalf("waiting ping: %v, want the refusal invalid_auth (HTTP 401)", err)
	}
	<-c.Done()
	if !errors.As(c.Err(), &e) || e.Code != client.CodeInvalidAuth {
		t.Errorf("Err = %v, want invalid_auth", c.Err())
	}
}

// TestHeartbeatWithEverySlotTaken: requests fill every slot and their replies are slow (the
// relay holds them: the edge never sees them). The heartbeat's ping must not wait for a slot
// and time out there: the connection is healthy, it answers pings, and it stays.
func TestHeartbeatWithEverySlotTaken(t *testing.T) {
	const calls = 70
	s := newStack(t, "tiny", func(c *edge.Config) { c.HeartbeatInterval = 250 * time.Millisecond })
	r := newRelay(s)
	var held, pings atomic.Int64
	r.setHooks(relayHooks{toServer: func(f []byte) ([]byte, []byte) {
		switch parseRequest(f).Method {
		case "users.info":
			held.Add(1)
			return nil, nil
		case "ping":
			pings.Add(1)
		}
		return f, nil
	}})
	user := s.origin.Users(s.team)[0].ID
	c := s.dial(user, func(o *client.Options) { o.URL = r.url })

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range calls {
		wg.Go(func() { c.UsersInfo(ctx, user) })
	}
	testkit.Eventually(t, func() bool { return held.Load() >= 63 }, "every slot taken")
	base := pings.Load()
	testkit.Eventually(t, func() bool { return pings.Load() >= base+3 }, "three heartbeats")
	if st := c.Stats(); st.Connects != 1 {
		t.Fatalf("stats %+v: the heartbeat dropped a healthy connection whose slots were all taken", st)
	}
	if n := held.Load(); n > 63 {
		t.Errorf("%d requests in flight with the heartbeat's ping: over the client's bound of 64", n+1)
	}
}

// TestTokenFuncErrorRetried: a TokenFunc that fails (its token service is down) is retried
// with backoff like a refused connection; only the server refusing a token is fatal.
func TestTokenFuncErrorRetried(t *testing.T) {
	s := newStack(t, "tiny", nil)
	user := s.origin.Users(s.team)[0].ID
	tok := s.token(user)
	var calls atomic.Int64
	var rec reconnects
	o := s.opts(user)
	o.Token = ""
	o.TokenFunc = func(context.Context) (string, error) {
		if calls.Add(1) <= 2 {
			return "", errors.New("token service down")
		}
		return tok, nil
	}
	o.OnReconnect = rec.add
	c, err := client.Dial(ctx10(t), o)
	if err != nil {
		t.Fatalf("Dial with a TokenFunc that fails twice: %v", err)
	}
	defer c.Close()
	if err := c.Ping(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	rs := rec.all()
	if calls.Load() != 3 || len(rs) != 2 {
		t.Fatalf("%d TokenFunc calls, reconnects %+v: want 3 calls and 2 retries", calls.Load(), rs)
	}
	for i, x := range rs {
		if x.Attempt != i+1 || x.Err == nil || !strings.Contains(x.Err.Error(), "token service down") {
			t.Errorf("retry %d: %+v, want attempt %d after the token error", i, x, i+1)
		}
	}
}
