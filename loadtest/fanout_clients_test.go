package loadtest

import (
	"bytes"
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The fan-out benchmark's clients: one reader goroutine per session that scans each frame for
// its seq and send time, and rounds of events measured from the publish to the last delivery.

// fanoutClients reads every session's frames on a goroutine of its own, noting the events of
// the round under way.
type fanoutClients struct {
	conns  []*websocket.Conn
	cur    atomic.Pointer[fanoutRound]
	failed atomic.Int64 // sessions that ended or got a goodbye
	wg     sync.WaitGroup
}

// fanoutRound is one run of events, seqs first..last. Reader i writes only got[i] and lat[i];
// the last reader to get the last event closes done, after which the round's owner reads them.
type fanoutRound struct {
	first, last int64
	got         []int
	lat         [][]int64 // publish-to-receive, ns, of events titled with their send time
	lastAt      atomic.Int64
	remaining   atomic.Int64
	done        chan struct{}
}

func newFanoutClients(conns []*websocket.Conn) *fanoutClients {
	fc := &fanoutClients{conns: conns}
	fc.wg.Add(len(conns))
	for i, c := range conns {
		go fc.read(i, c)
	}
	return fc
}

func (fc *fanoutClients) close() {
	CloseAll(fc.conns)
	fc.wg.Wait()
}

var (
	eventPrefix   = []byte(`{"type":"event","seq":`)
	goodbyePrefix = []byte(`{"type":"goodbye"`)
	titleKey      = []byte(`"title":"`)
)

func (fc *fanoutClients) read(i int, c *websocket.Conn) {
	defer fc.wg.Done()
	var buf bytes.Buffer
	for {
		_, r, err := c.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			fc.failed.Add(1)
			return
		}
		now := time.Now().UnixNano()
		frame := buf.Bytes()
		if bytes.HasPrefix(frame, goodbyePrefix) {
			fc.failed.Add(1)
			return
		}
		seq, sent, ok := parseEventFrame(frame)
		rd := fc.cur.Load()
		if !ok || rd == nil || seq < rd.first || seq > rd.last {
			continue
		}
		rd.got[i]++
		if sent > 0 {
			rd.lat[i] = append(rd.lat[i], now-sent)
		}
		if seq == rd.last {
			for at := rd.lastAt.Load(); now > at && !rd.lastAt.CompareAndSwap(at, now); at = rd.lastAt.Load() {
			}
			if rd.remaining.Add(-1) == 0 {
				close(rd.done)
			}
		}
	}
}

// parseEventFrame reads the seq of an event frame and, when the event's title is a number,
// that number (a send time). It scans instead of decoding, so that the client's CPU goes to
// the sockets.
func parseEventFrame(frame []byte) (seq, title int64, ok bool) {
	rest, ok := bytes.CutPrefix(frame, eventPrefix)
	if !ok {
		return 0, 0, false
	}
	seq, rest = leadingInt(rest)
	if seq <= 0 {
		return 0, 0, false
	}
	if i := bytes.Index(rest, titleKey); i >= 0 {
		title, _ = leadingInt(rest[i+len(titleKey):])
	}
	return seq, title, true
}

// leadingInt reads the decimal digits b starts with; 0 when there are none or too many.
func leadingInt(b []byte) (int64, []byte) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, b[i:]
		}
		n = n*10 + d
	}
	return n, b[i:]
}

type roundResult struct {
	deliveries           int
	took, published      time.Duration
	p50, p99, max        time.Duration
	serverCPU, serverSys time.Duration
	clientCPU            time.Duration
	otherCPU, wall       time.Duration // CPU of the rest of the machine (kernel threads, other processes) over wall
}

// round runs publish, which must publish the n events after seq, waits until every session
// has the last one, and returns the last seq and what was measured.
func (fc *fanoutClients) round(b *testing.B, ctx context.Context, t *target, seq int64, n int,
	publish func(context.Context) (int64, error)) (int64, roundResult) {
	b.Helper()
	rd := &fanoutRound{first: seq + 1, last: seq + int64(n), got: make([]int, len(fc.conns)),
		lat: make([][]int64, len(fc.conns)), done: make(chan struct{})}
	rd.remaining.Store(int64(len(fc.conns)))
	fc.cur.Store(rd)
	user0, sys0, err := ProcessCPU(t.pid)
	if err != nil {
		b.Fatal(err)
	}
	self0 := SelfCPU()
	machine0, err := MachineCPU()
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	last, err := publish(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if last != rd.last {
		b.Fatalf("the %d events after seq %d ended at seq %d, want %d: is something else publishing?", n, seq, last, rd.last)
	}
	res := roundResult{published: time.Since(start)}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-rd.done:
			waiting = false
		case <-tick.C:
			if f := fc.failed.Load(); f > 0 {
				b.Fatalf("%d sessions ended during the round (slow consumer?)", f)
			}
		case <-ctx.Done():
			b.Fatalf("round of %d events: %d of %d sessions still without seq %d: %v",
				n, rd.remaining.Load(), len(fc.conns), rd.last, ctx.Err())
		}
	}
	res.took = time.Unix(0, rd.lastAt.Load()).Sub(start)
	user1, sys1, err := ProcessCPU(t.pid)
	if err != nil {
		b.Fatal(err)
	}
	res.serverCPU, res.serverSys = user1+sys1-user0-sys0, sys1-sys0
	res.clientCPU = SelfCPU() - self0
	machine1, err := MachineCPU()
	if err != nil {
		b.Fatal(err)
	}
	res.otherCPU = max(0, machine1-machine0-res.serverCPU-res.clientCPU)
	res.wall = time.Since(start)

	var all []int64
	for i, g := range rd.got {
		if g != n {
			b.Fatalf("session %d got %d of the %d events", i, g, n)
		}
		res.deliveries += g
		all = append(all, rd.lat[i]...)
	}
	if len(all) > 0 {
		slices.Sort(all)
		pct := func(p float64) time.Duration {
			return time.Duration(all[max(0, int(math.Ceil(p*float64(len(all))))-1)])
		}
		res.p50, res.p99, res.max = pct(0.50), pct(0.99), time.Duration(all[len(all)-1])
	}
	return rd.last, res
}
