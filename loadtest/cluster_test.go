package loadtest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin/reference"
)

// TestClusterSurvivesEdgeKill runs weft as real processes: the reference origin with its NATS
// server, 3 edges and 2 proxies, all the built binary. Clients connect through both proxies;
// one edge is killed with SIGKILL. Every client comes back, on a surviving edge, resumed,
// and no client loses or repeats an event of its team.
func TestClusterSurvivesEdgeKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := weftBin(t)
	var stderr strings.Builder
	var mu sync.Mutex
	cfg := ClusterConfig{Bin: bin, Stderr: lockedWriter{&mu, &stderr}}
	if os.Getenv("WEFT_TEST_LOGS") != "" {
		cfg.EdgeArgs = []string{"--log-level", "info"}
	}
	cl, err := StartCluster(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cl.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() && os.Getenv("WEFT_TEST_LOGS") != "" {
			mu.Lock()
			t.Log(stderr.String())
			mu.Unlock()
		}
	}()

	teams, err := worldTeams("small")
	if err != nil {
		t.Fatal(err)
	}
	teams = teams[:30]
	type member struct {
		c    *client.Client
		team string
		seqs map[int64]int
		mu   sync.Mutex
	}
	var ms []*member
	users := map[string][]TeamUser{}
	for i, team := range teams {
		us, err := TeamUsers(ctx, cl.HTTP, cl.Origin.URL, OriginToken, team)
		if err != nil {
			t.Fatal(err)
		}
		us = slices.DeleteFunc(us, func(u TeamUser) bool { return u.Deleted }) // refused: 403 account_inactive
		users[team] = us
		for u := range 2 {
			tok, err := cl.Token(team, us[u].ID)
			if err != nil {
				t.Fatal(err)
			}
			p := cl.Proxies[(2*i+u)%len(cl.Proxies)]
			c, err := client.Dial(ctx, client.Options{URL: "ws" + strings.TrimPrefix(p.URL, "http") + "/ws", Token: tok,
				HTTPClient: cl.HTTP, Backoff: client.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m := &member{c: c, team: team, seqs: map[int64]int{}}
			go func() {
				for ev := range c.Events() {
					m.mu.Lock()
					m.seqs[ev.Seq]++
					m.mu.Unlock()
				}
			}()
			ms = append(ms, m)
		}
	}
	byNode := map[string]int{}
	for _, m := range ms {
		byNode[m.c.Hello().Node]++
	}
	victim, most := "", 0
	for n, k := range byNode {
		if k > most {
			victim, most = n, k
		}
	}
	want := map[string][]int64{}
	publish := func() {
		for _, team := range teams {
			title := fmt.Sprintf("t%d", time.Now().UnixNano())
			r, err := PostEvents(ctx, cl.HTTP, cl.Origin.URL, OriginToken, team,
				reference.EventsRequest{Type: "user_change", User: users[team][5].ID, Title: &title})
			if err != nil {
				t.Fatal(err)
			}
			want[team] = append(want[team], r.FirstSeq)
		}
	}
	publish()
	for _, e := range cl.Edges {
		if e.Name == victim {
			e.Kill()
		}
	}
	publish() // while the victim's clients are away
	back := 0
	testkit.EventuallyOr(t, 90*time.Second, func() bool {
		back = 0
		for _, m := range ms {
			if h := m.c.Hello(); h.Node != victim && (m.c.Stats().Connects == 1 || h.Resumed) {
				back++
			}
		}
		return back == len(ms)
	}, "every client back on a live edge, resumed", func() {
		for i, m := range ms {
			if h := m.c.Hello(); h.Node == victim || (m.c.Stats().Connects > 1 && !h.Resumed) {
				t.Errorf("client %d of team %s: hello %+v stats %+v err %v", i, m.team, h, m.c.Stats(), m.c.Err())
			}
		}
		t.Logf("%d of %d clients back and resumed after %s was killed", back, len(ms), victim)
	})
	publish()
	done := 0
	testkit.EventuallyOr(t, 90*time.Second, func() bool {
		done = 0
		for _, m := range ms {
			m.mu.Lock()
			ok := true
			for _, s := range want[m.team] {
				ok = ok && m.seqs[s] > 0
			}
			m.mu.Unlock()
			if ok {
				done++
			}
		}
		return done == len(ms)
	}, "every client to have every event of its team", func() { t.Logf("%d of %d clients have every event of their team", done, len(ms)) })
	moved := 0
	for _, m := range ms {
		m.mu.Lock()
		for s, n := range m.seqs {
			if n > 1 {
				t.Errorf("team %s: event %d delivered %d times", m.team, s, n)
			}
		}
		m.mu.Unlock()
		if m.c.Stats().Connects > 1 {
			moved++
			if !m.c.Hello().Resumed {
				t.Errorf("team %s: reconnected without resuming", m.team)
			}
		}
	}
	if moved < most {
		t.Errorf("%d clients reconnected, but %d were on the killed edge", moved, most)
	}
	t.Logf("killed %s (%d of %d clients); all back, resumed, no event lost or repeated", victim, most, len(ms))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
