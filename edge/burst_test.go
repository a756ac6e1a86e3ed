package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// seqReader reads a connection as fast as it can and keeps only the seqs of its events: a
// client as cheap as it gets, so that a test of big bursts holds no copy of them.
type seqReader struct {
	conn *websocket.Conn
	done chan struct{}
	mu   sync.Mutex
	seqs map[int64]int
	err  error
}

func newSeqReader(conn *websocket.Conn) *seqReader {
	r := &seqReader{conn: conn, done: make(chan struct{}), seqs: map[int64]int{}}
	conn.SetReadLimit(1 << 20)
	go func() {
		defer close(r.done)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
			var f struct {
				Type string `json:"type"`
				Seq  int64  `json:"seq"`
			}
			if json.Unmarshal(b, &f) == nil && f.Type == "event" {
				r.mu.Lock()
				r.seqs[f.Seq]++
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// has reports whether every seq of want came, and the error that ended the reader, if one did.
func (r *seqReader) has(want []int64) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range want {
		if r.seqs[s] == 0 {
			return false, r.err
		}
	}
	return true, r.err
}

// TestBurstsOfLargeEvents (issue 20): five clients that read continuously get 20 bursts of 64
// team-wide events of 48 KiB each (3 MiB a burst, three times the 1 MiB queue bound of the
// default configuration) with no disconnection, every event once. A client of the same team
// that stops reading is still closed as a slow consumer, and the readers are not held back
// by it: each burst is in every reader while the stuck session is still open (the first), or
// whatever became of it.
func TestBurstsOfLargeEvents(t *testing.T) {
	const readers, bursts, perBurst, size = 5, 20, 64, 48 << 10
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	team := h.team
	users := h.activeUsers(team)
	stuck, _ := h.dialStuck(team, users[0])
	var rs []*seqReader
	for i := range readers {
		conn, _, err := h.dialRaw(h.token(team, users[1+i]), "")
		testkit.OK(t, err)
		t.Cleanup(func() { conn.CloseNow() })
		rs = append(rs, newSeqReader(conn))
	}
	pad := strings.Repeat("x", size)
	var all []int64
	stuckOpenAfterFirst := false
	for b := range bursts {
		var burst []int64
		for i := range perBurst {
			ev := h.must(h.origin.UpdateUser(ctx, team, users[1+i%readers], func(u *origin.User) {
				u.Title = fmt.Sprintf("burst %d event %d %s", b, i, pad)
			}))
			burst = append(burst, ev.Seq)
		}
		all = append(all, burst...)
		testkit.EventuallyOr(t, 30*time.Second, func() bool {
			for _, r := range rs {
				if ok, err := r.has(burst); !ok || err != nil {
					return false
				}
			}
			return true
		}, fmt.Sprintf("burst %d in every reader", b), func() {
			for i, r := range rs {
				ok, err := r.has(burst)
				t.Logf("reader %d: has the burst %v, ended by %v", i, ok, err)
			}
		})
		if b == 0 {
			stuckOpenAfterFirst = h.metric("weft_edge_slow_consumer_closes_total") == 0
		}
	}
	testkit.True(t, stuckOpenAfterFirst, "the stuck session was still open when the readers had the first burst (they were not held behind it)")
	testkit.Eventually(t, func() bool { return h.metric("weft_edge_slow_consumer_closes_total") == 1 }, "the stuck session closed as a slow consumer")
	testkit.Eventually(t, func() bool { return h.edge.Sessions() == readers }, "the stuck session to end")
	rctx, cancel := context.WithTimeout(ctx, testkit.Within)
	defer cancel()
	for {
		if _, _, err := stuck.Read(rctx); err != nil {
			testkit.True(t, rctx.Err() == nil, "the stuck connection is still open")
			break
		}
	}
	for i, r := range rs {
		r.mu.Lock()
		for _, s := range all {
			if n := r.seqs[s]; n != 1 {
				t.Errorf("reader %d got seq %d %d times", i, s, n)
				break
			}
		}
		err := r.err
		r.mu.Unlock()
		testkit.True(t, err == nil, "reader %d ended: %v", i, err)
	}
}
