package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
)

// TestDevControlKillsAndStartsARegion: `weft dev --regions 2` prints its control endpoint.
// Killing region a's edges there cuts its client's connection without a goodbye; the client
// comes back through a's proxy, which now routes to home, its fallback, and resumes there with
// the event made meanwhile. Starting a's edges again sends it home. Unknown regions are 404,
// killing a region without edges and starting one with edges are 409.
func TestDevControlKillsAndStartsARegion(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	printed, done := startDevRegions(t, ctx, "--regions", "2", "--wan-rtt", "20ms")
	control := regexp.MustCompile(`(?m)^  control (http://\S+)`).FindStringSubmatch(printed)
	proxyA := regexp.MustCompile(`(?m)^  region a +proxy (http://\S+)`).FindStringSubmatch(printed)
	tok := regexp.MustCompile(`(?m)^  (T\d+) (U\d+) \S+ +(\S+)$`).FindStringSubmatch(printed)
	orig := regexp.MustCompile(`(?m)^  origin  (\S+)$`).FindStringSubmatch(printed)
	testkit.True(t, control != nil && proxyA != nil && tok != nil && orig != nil, "control, region a's proxy, a token and the origin printed:\n%s", printed)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	post := func(path string) (int, map[string]any) {
		t.Helper()
		resp, err := hc.Post(control[1]+path, "application/json", nil)
		testkit.OK(t, err)
		defer resp.Body.Close()
		var v map[string]any
		testkit.OK(t, json.NewDecoder(resp.Body).Decode(&v))
		return resp.StatusCode, v
	}

	var c *client.Client
	var last error
	var mu sync.Mutex // guards reconnects and seen
	var reconnects []client.Reconnect
	testkit.EventuallyOr(t, 20*time.Second, func() bool {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		c, last = client.Dial(dctx, client.Options{URL: proxyA[1], Token: tok[3], OnReconnect: func(r client.Reconnect) {
			mu.Lock()
			defer mu.Unlock()
			reconnects = append(reconnects, r)
		}})
		return last == nil
	}, "a session through region a's proxy", func() { t.Logf("last error: %v", last) })
	testkit.Equal(t, c.Hello().Region, "a", "hello's region")
	seen := map[int64]int{}
	var readers sync.WaitGroup
	defer func() {
		c.Close() // ends Events, and so the reader
		readers.Wait()
	}()
	readers.Go(func() {
		for ev := range c.Events() {
			mu.Lock()
			seen[ev.Seq]++
			mu.Unlock()
		}
	})
	change := func(title string) int64 {
		t.Helper()
		return devChange(t, hc, orig[1], tok[1], tok[2], title)
	}
	has := func(seq int64) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen[seq] > 0
		}
	}
	first := change("before the kill")
	testkit.EventuallyWithin(t, 15*time.Second, has(first), "the first change in a")

	status, v := post("/regions/nowhere/kill")
	testkit.Equal(t, status, http.StatusNotFound, "kill of an unknown region: "+fmt.Sprint(v))
	status, v = post("/regions/a/start")
	testkit.Equal(t, status, http.StatusConflict, "start of a region with edges: "+fmt.Sprint(v))
	status, v = post("/regions/a/kill")
	testkit.Equal(t, status, http.StatusOK, "kill of region a: "+fmt.Sprint(v))
	testkit.Equal(t, fmt.Sprint(v["killed"]), "[edge-a-1]", "edges killed")
	status, v = post("/regions/a/kill")
	testkit.Equal(t, status, http.StatusConflict, "kill of a region without edges: "+fmt.Sprint(v))
	// The killed edge's port refuses connections.
	edgeA := regexp.MustCompile(`(?m)^ +edge-a-1 +http://(\S+)$`).FindStringSubmatch(printed)
	testkit.True(t, edgeA != nil, "edge-a-1 printed:\n%s", printed)
	if conn, err := net.Dial("tcp", edgeA[1]); err == nil {
		conn.Close()
		t.Errorf("the killed edge's address %s still accepts connections", edgeA[1])
	}

	away := change("while a is down")
	testkit.EventuallyOr(t, 30*time.Second, func() bool { return c.Hello().Region == "home" && has(away)() },
		"the client resumed in home with the change made meanwhile", func() { t.Logf("hello %+v, stats %+v", c.Hello(), c.Stats()) })
	testkit.True(t, c.Hello().Resumed, "the client resumed its stream in home: %+v", c.Hello())
	mu.Lock()
	rs := slices.Clone(reconnects)
	mu.Unlock()
	testkit.True(t, len(rs) > 0 && rs[0].Goodbye == nil, "the kill cut the connection without a goodbye: %+v", rs)

	status, v = post("/regions/a/start")
	testkit.Equal(t, status, http.StatusOK, "start of region a: "+fmt.Sprint(v))
	testkit.Equal(t, fmt.Sprint(v["started"]), "[edge-a-2]", "edges started (a new life, a new name)")
	testkit.EventuallyOr(t, 60*time.Second, func() bool { return c.Hello().Region == "a" }, "the client back in a",
		func() { t.Logf("hello %+v, stats %+v", c.Hello(), c.Stats()) })
	back := change("a is back")
	testkit.EventuallyWithin(t, 15*time.Second, has(back), "the change made after the return")
	mu.Lock()
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("seq %d handed over %d times", seq, n)
		}
	}
	for _, seq := range []int64{first, away, back} {
		if seen[seq] != 1 {
			t.Errorf("change %d seen %d times, want once", seq, seen[seq])
		}
	}
	mu.Unlock()
	testkit.Equal(t, c.Stats().Duplicates, int64(0), "duplicates the client dropped")

	c.Close()
	readers.Wait()
	cancel()
	select {
	case err := <-done:
		testkit.OK(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("weft dev did not stop after its context ended")
	}
}

// TestDevRestartsItsEdge: plain `weft dev` prints a control endpoint for its single edge. A
// restart there kills the edge as a crash would and starts a new one on the same address: the
// client, whose only URL that is, comes back to it and resumes with the change made while the
// edge was down, once. The page and /dev/users are served on that address, by every life.
func TestDevRestartsItsEdge(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	printed, done := startDevRegions(t, ctx)
	page := regexp.MustCompile(`^weft dev: open (http://\S+)/ in a browser\n`).FindStringSubmatch(printed)
	control := regexp.MustCompile(`(?m)^  control (http://\S+)`).FindStringSubmatch(printed)
	edge := regexp.MustCompile(`(?m)^  edge +(http://\S+)`).FindStringSubmatch(printed)
	orig := regexp.MustCompile(`(?m)^  origin  (\S+)$`).FindStringSubmatch(printed)
	testkit.True(t, page != nil && control != nil && edge != nil && orig != nil, "the page first, then control, edge and origin printed:\n%s", printed)
	testkit.Equal(t, page[1], edge[1], "the page's URL is the edge's")
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := hc.Get(edge[1] + path)
		testkit.OK(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		testkit.OK(t, err)
		return resp.StatusCode, string(b), resp.Header
	}
	status, body, h := get("/")
	testkit.True(t, status == http.StatusOK && strings.Contains(body, "<html") && strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'"),
		"GET / serves the page with its CSP: %d %q %v", status, body[:min(len(body), 200)], h)
	var users struct {
		Users []struct{ Team, ID, Token string }
	}
	status, body, _ = get("/dev/users")
	testkit.Equal(t, status, http.StatusOK, "/dev/users: "+body)
	testkit.OK(t, json.Unmarshal([]byte(body), &users))
	testkit.True(t, len(users.Users) > 3, "/dev/users lists users: %s", body)
	me := users.Users[0]

	c, err := client.Dial(ctx, client.Options{URL: edge[1], Token: me.Token})
	testkit.OK(t, err)
	defer c.Close()
	var mu sync.Mutex
	seen := map[int64]int{}
	var readers sync.WaitGroup
	readers.Go(func() {
		for ev := range c.Events() {
			mu.Lock()
			seen[ev.Seq]++
			mu.Unlock()
		}
	})
	defer readers.Wait()
	defer c.Close()
	has := func(seq int64) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen[seq] > 0
		}
	}
	first := devChange(t, hc, orig[1], me.Team, me.ID, "before the restart")
	testkit.EventuallyWithin(t, 15*time.Second, has(first), "the first change")
	firstNode := c.Hello().Node

	resp, err := hc.Post(control[1]+"/regions/default/kill", "", nil)
	testkit.OK(t, err)
	resp.Body.Close()
	testkit.Equal(t, resp.StatusCode, http.StatusOK, "kill")
	away := devChange(t, hc, orig[1], me.Team, me.ID, "while the edge is down")
	resp, err = hc.Post(control[1]+"/regions/default/start", "", nil)
	testkit.OK(t, err)
	resp.Body.Close()
	testkit.Equal(t, resp.StatusCode, http.StatusOK, "start")
	testkit.EventuallyOr(t, 60*time.Second, func() bool { return c.Hello().Node != firstNode && has(away)() },
		"the client back on the new edge with the change made meanwhile", func() { t.Logf("hello %+v, stats %+v", c.Hello(), c.Stats()) })
	testkit.True(t, c.Hello().Resumed, "the client resumed: %+v", c.Hello())
	status, _, _ = get("/")
	testkit.Equal(t, status, http.StatusOK, "the new edge serves the page")
	mu.Lock()
	for _, seq := range []int64{first, away} {
		testkit.Equal(t, seen[seq], 1, fmt.Sprintf("times change %d was handed over", seq))
	}
	mu.Unlock()
	c.Close()
	readers.Wait()
	cancel()
	select {
	case err := <-done:
		testkit.OK(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("weft dev did not stop")
	}
}
