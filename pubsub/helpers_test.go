package pubsub

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// Fixtures.

func startEmbedded(tb testing.TB, cfg EmbeddedConfig) *Embedded {
	tb.Helper()
	e, err := NewEmbedded(cfg)
	testkit.OK(tb, err)
	testkit.OK(tb, e.Start())
	tb.Cleanup(e.Shutdown)
	return e
}

// connect connects with cfg as the stream's owner (ManageStream), as most tests need a stream.
func connect(tb testing.TB, cfg Config) *Bus {
	tb.Helper()
	cfg.ManageStream = true
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b, err := Connect(ctx, cfg)
	testkit.OK(tb, err)
	tb.Cleanup(b.Close)
	return b
}

// newBus starts an in-process embedded server and connects to it.
func newBus(tb testing.TB, cfg Config) (*Embedded, *Bus) {
	tb.Helper()
	e := startEmbedded(tb, EmbeddedConfig{NoListen: true})
	cfg.Embedded = e
	return e, connect(tb, cfg)
}

func event(team string, seq int64) *origin.Event {
	return &origin.Event{Team: team, Seq: seq, Type: origin.EventMessage, ChannelID: "C1",
		UserID: "U1", TS: fmt.Sprintf("1700000000.%06d", seq), Text: fmt.Sprintf("hello %d", seq)}
}

func publish(tb testing.TB, b *Bus, team string, from, to int64) {
	tb.Helper()
	for seq := from; seq <= to; seq++ {
		testkit.OK(tb, b.PublishEvent(context.Background(), event(team, seq)))
	}
}

// recorder is a Handler that keeps what it gets. gate, when set, is received from before each
// event: a test holds the handler by not sending.
type recorder struct {
	mu   sync.Mutex
	seqs []int64
	lost []error
	gate chan struct{}
	team string
	tb   testing.TB
}

func newRecorder(tb testing.TB, team string) *recorder { return &recorder{tb: tb, team: team} }

func (r *recorder) Event(ev *origin.Event) {
	if r.gate != nil {
		<-r.gate
	}
	if ev.Team != r.team {
		r.tb.Errorf("event of team %s delivered to team %s", ev.Team, r.team)
	}
	r.mu.Lock()
	r.seqs = append(r.seqs, ev.Seq)
	r.mu.Unlock()
}

func (r *recorder) Lost(err error) {
	r.mu.Lock()
	r.lost = append(r.lost, err)
	r.mu.Unlock()
}

func (r *recorder) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.seqs...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

func (r *recorder) losses() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.lost...)
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func subscribe(tb testing.TB, b *Bus, team string, h Handler) *TeamSub {
	tb.Helper()
	s, err := b.SubscribeTeam(team, h)
	testkit.OK(tb, err)
	tb.Cleanup(s.Close)
	return s
}

func osStat(name string) (any, error) { return os.Stat(name) }
