package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestDevStackServesItsPrintedTokens runs `weft dev` in-process on free ports, uses the URL and
// a token it printed the way the README says (POST /api/boot), and stops it with its context.
func TestDevStackServesItsPrintedTokens(t *testing.T) { devServesPrintedToken(t, "--rate", "50") }

// TestDevRingServesItsPrintedTokens: the same with 3 edges behind a proxy: the printed URL is
// the proxy's, and a boot through it reaches the team's edge.
func TestDevRingServesItsPrintedTokens(t *testing.T) {
	devServesPrintedToken(t, "--rate", "50", "--edges", "3")
}

// devServesPrintedToken runs weft dev with extra flags, boots with the token of its curl
// example, stops it and returns what it printed.
func devServesPrintedToken(t *testing.T, extra ...string) string {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"dev", "--addr", "127.0.0.1:0", "--origin-addr", "127.0.0.1:0",
			"--nats-addr", "127.0.0.1:0", "--size", "tiny", "--drain", "100ms", "--log-level", "error"}, extra...), &out)
	}()
	curl := regexp.MustCompile(`curl -s -H 'Authorization: Bearer (\S+)' -d '\{\}' (\S+)/api/boot`)
	var m []string
	testkit.EventuallyOr(t, 20*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("weft dev exited early: %v\n%s", err, out.String())
		default:
		}
		m = curl.FindStringSubmatch(out.String())
		return m != nil
	}, "weft dev to print its boot example", func() { t.Logf("weft dev printed:\n%s", out.String()) })
	var boot struct {
		OK   bool `json:"ok"`
		Self struct {
			ID string `json:"id"`
		} `json:"self"`
		Channels []json.RawMessage `json:"channels"`
	}
	// A proxy may answer 503 for the moment it takes to hear its edges: ask until it answers.
	var err error
	testkit.EventuallyWithin(t, 20*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodPost, m[2]+"/api/boot", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+m[1])
		resp, derr := http.DefaultClient.Do(req)
		if derr != nil {
			t.Fatal(derr)
		}
		err = json.NewDecoder(resp.Body).Decode(&boot)
		resp.Body.Close()
		return resp.StatusCode != http.StatusServiceUnavailable
	}, "an answer to boot other than 503")
	if err != nil || !boot.OK || boot.Self.ID == "" || len(boot.Channels) == 0 {
		t.Fatalf("boot with the printed token: %+v %v", boot, err)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("weft dev stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("weft dev did not stop after its context ended")
	}
	return out.String()
}

func TestEnvTwinFillsUnsetFlags(t *testing.T) {
	t.Setenv("WEFT_SIZE", "nosuchsize")
	err := run(context.Background(), []string{"origin", "--nats-addr", "127.0.0.1:0"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "nosuchsize") {
		t.Fatalf("WEFT_SIZE was not used: %v", err)
	}
	t.Setenv("WEFT_RATE", "fast")
	if err := run(context.Background(), []string{"origin"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "WEFT_RATE") {
		t.Fatalf("a bad environment value should name its variable: %v", err)
	}
}
