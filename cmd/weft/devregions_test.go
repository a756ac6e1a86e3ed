package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
)

// TestDevRegions runs `weft dev --regions 3`: it prints one proxy per region; a client through
// each region's proxy is served in that region, and a change made at the origin (its admin
// endpoint) reaches the sessions of every region, two of them across simulated WAN links.
func TestDevRegions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	printed, done := startDevRegions(t, ctx, "--regions", "3", "--wan-rtt", "40ms,60ms")
	proxies := regexp.MustCompile(`(?m)^  region (\S+) +proxy (http://\S+)`).FindAllStringSubmatch(printed, -1)
	testkit.Equal(t, len(proxies), 3, "regions printed")
	for i, want := range []string{"home", "a", "b"} {
		testkit.Equal(t, proxies[i][1], want, "region printed")
	}
	testkit.True(t, strings.Contains(printed, "40ms round trip to home") && strings.Contains(printed, "60ms round trip to home"),
		"the round trips printed:\n%s", printed)
	tok := regexp.MustCompile(`(?m)^  (T\d+) (U\d+) \S+ +(\S+)$`).FindStringSubmatch(printed)
	orig := regexp.MustCompile(`(?m)^  origin  (\S+)$`).FindStringSubmatch(printed)
	testkit.True(t, tok != nil && orig != nil, "a token and the origin printed:\n%s", printed)
	team, user := tok[1], tok[2]

	// One session per region, through its proxy; each remembers the highest seq it was sent.
	type session struct {
		c   *client.Client
		mu  sync.Mutex
		max int64
	}
	var sessions []*session
	var wg sync.WaitGroup
	defer wg.Wait() // the readers end when their client closes
	for _, p := range proxies {
		region, url := p[1], p[2]
		var c *client.Client
		var last error
		// A proxy answers 503 for the moment it takes to hear its region's edge.
		testkit.EventuallyOr(t, 20*time.Second, func() bool {
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			defer dcancel()
			c, last = client.Dial(dctx, client.Options{URL: url, Token: tok[3]})
			return last == nil
		}, "a session through region "+region+"'s proxy", func() { t.Logf("last error: %v", last) })
		defer c.Close()
		testkit.Equal(t, c.Hello().Region, region, "hello's region through region "+region+"'s proxy")
		s := &session{c: c}
		sessions = append(sessions, s)
		wg.Go(func() {
			for ev := range c.Events() {
				s.mu.Lock()
				s.max = max(s.max, ev.Seq)
				s.mu.Unlock()
			}
		})
	}

	made := devChange(t, http.DefaultClient, orig[1], team, user, "across the WAN")
	for i, s := range sessions {
		testkit.EventuallyWithin(t, 15*time.Second, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.max >= made
		}, fmt.Sprintf("event %d in region %s's session", made, proxies[i][1]))
	}
	for _, s := range sessions {
		s.c.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		testkit.OK(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("weft dev did not stop after its context ended")
	}
}

// startDevRegions runs `weft dev` with args (and free ports, the tiny world, no background
// activity) until ctx ends, and returns what it printed up to its examples and the channel
// its end is sent on.
func startDevRegions(t *testing.T, ctx context.Context, args ...string) (string, chan error) {
	t.Helper()
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"dev", "--addr", "127.0.0.1:0", "--origin-addr", "127.0.0.1:0",
			"--nats-addr", "127.0.0.1:0", "--size", "tiny", "--rate", "0", "--drain", "100ms", "--log-level", "error",
			"--autocomplete-typos=false"}, args...), &out)
	}()
	testkit.EventuallyOr(t, 25*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("weft dev exited early: %v\n%s", err, out.String())
		default:
		}
		return strings.Contains(out.String(), "\ntry:\n")
	}, "weft dev to print its examples", func() { t.Logf("weft dev printed:\n%s", out.String()) })
	return out.String(), done
}

// devChange changes user's title through the admin endpoint of the origin at origin and
// returns the change's seq.
func devChange(t *testing.T, hc *http.Client, origin, team, user, title string) int64 {
	t.Helper()
	body := fmt.Sprintf(`{"type":"user_change","user":%q,"title":%q}`, user, title)
	resp, err := hc.Post(origin+"/origin/admin/teams/"+team+"/events", "application/json", strings.NewReader(body))
	testkit.OK(t, err)
	defer resp.Body.Close()
	var made struct {
		OK      bool  `json:"ok"`
		LastSeq int64 `json:"last_seq"`
	}
	testkit.OK(t, json.NewDecoder(resp.Body).Decode(&made))
	testkit.True(t, made.OK && made.LastSeq > 0, "the origin made the change: %+v", made)
	return made.LastSeq
}

// TestDevRegionsFlags: bad --regions and --wan-rtt values stop weft dev before it starts
// anything, with an error naming the flag.
func TestDevRegionsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--regions", "0"}, "--regions"},
		{[]string{"--regions", "6"}, "--regions"},
		{[]string{"--regions", "3", "--wan-rtt", "80ms"}, "--wan-rtt"},
		{[]string{"--regions", "2", "--wan-rtt", "soon"}, "--wan-rtt"},
		{[]string{"--regions", "2", "--nats", "nats://127.0.0.1:1"}, "--nats"},
		{[]string{"--regions", "2", "--stream-mirrors", "region-x"}, "--stream-mirrors"},
	} {
		err := run(context.Background(), append([]string{"dev", "--nats-addr", "127.0.0.1:0"}, c.args...), &testkit.SyncBuffer{})
		testkit.True(t, err != nil && strings.Contains(err.Error(), c.want), "%v: %v, want an error naming %s", c.args, err, c.want)
	}
}
