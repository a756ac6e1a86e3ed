package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/weft-edge/weft/internal/sleep"
	"golang.org/x/sync/errgroup"
)

// cheapGroup is a set of cheap clients of one server and what they measured: events received,
// the publish-to-receive latency of the stamped ones, and probe round trips. The bigteam
// scenario runs its 10,000 sessions as groups in worker processes (CheapWorkerCommand) and
// its probers as a group of its own process.
type cheapGroup struct {
	events, up, failed atomic.Int64
	lastAt             atomic.Int64 // unix ns of the latest event
	firstErr           atomic.Pointer[string]
	lat, probe         *Hist

	mu    sync.Mutex
	conns []*cheapConn
	wg    sync.WaitGroup // readers, the keep-alive and the probe loop
}

func newCheapGroup() *cheapGroup { return &cheapGroup{lat: NewHist(), probe: NewHist()} }

func (g *cheapGroup) event(stamp int64, at time.Time) {
	g.events.Add(1)
	g.lastAt.Store(at.UnixNano())
	if stamp > 0 {
		g.lat.Record(at.Sub(time.Unix(0, stamp)))
	}
}

func (g *cheapGroup) probed(rtt time.Duration) { g.probe.Record(rtt) }

func (g *cheapGroup) fail(err error) {
	g.failed.Add(1)
	s := err.Error()
	g.firstErr.CompareAndSwap(nil, &s)
}

// dial connects a client per token, parallel at a time; a refused dial is retried (a server
// under a connect herd may refuse some) until ctx ends. Each connected client is read until
// it ends.
func (g *cheapGroup) dial(ctx context.Context, proto, url string, tokens []string, parallel int) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(max(parallel, 1))
	for _, tok := range tokens {
		eg.Go(func() error {
			var c *cheapConn
			var err error
			for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
				dctx, cancel := context.WithTimeout(ectx, 30*time.Second)
				c, err = dialCheap(dctx, proto, url, tok)
				cancel()
				if err == nil {
					break
				}
				select {
				case <-ectx.Done():
					return fmt.Errorf("%w (last dial: %v)", ectx.Err(), err)
				case <-time.After(wait):
				}
			}
			g.mu.Lock()
			g.conns = append(g.conns, c)
			g.mu.Unlock()
			g.up.Add(1)
			g.wg.Go(func() {
				if err := c.read(g); !errors.Is(err, net.ErrClosed) {
					g.fail(err)
				}
				g.up.Add(-1)
			})
			return nil
		})
	}
	return eg.Wait()
}

// keepAlive pings every client once per heartbeat, spread over it, until ctx ends.
func (g *cheapGroup) keepAlive(ctx context.Context, every time.Duration) {
	g.wg.Go(func() {
		for ctx.Err() == nil {
			g.mu.Lock()
			conns := append([]*cheapConn(nil), g.conns...)
			g.mu.Unlock()
			gap := every / time.Duration(max(len(conns), 1))
			for _, c := range conns {
				if ctx.Err() != nil {
					return
				}
				_ = c.ping() // a failed one shows as the reader's end
				_ = sleep.For(ctx, gap)
			}
			if len(conns) == 0 {
				_ = sleep.For(ctx, every)
			}
		}
	})
}

// probeLoop has every client ask users.info about one of users every `every`, one request out
// per client at a time, until ctx ends.
func (g *cheapGroup) probeLoop(ctx context.Context, every time.Duration, users []string) {
	g.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			g.mu.Lock()
			conns := append([]*cheapConn(nil), g.conns...)
			g.mu.Unlock()
			for i, c := range conns {
				_ = c.probe(users[(i+k)%len(users)])
			}
		}
	})
}

// close ends every client and waits for the group's goroutines (their contexts must be done).
func (g *cheapGroup) close() {
	g.mu.Lock()
	for _, c := range g.conns {
		c.close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// CheapWorkerCommand is the argument that makes weft-loadtest a cheap-client worker: a
// cheapPlan as JSON on stdin, then commands, one per line: "report" (write the latencies
// recorded since the last report, and forget them) and "stop". It writes a cheapStatus line
// every 200ms and a cheapReport line per report.
const CheapWorkerCommand = "cheap-worker"

type cheapPlan struct {
	Proto     string        `json:"proto"`
	URL       string        `json:"url"`
	Tokens    []string      `json:"tokens"`
	Parallel  int           `json:"parallel"`
	Heartbeat time.Duration `json:"heartbeat"` // weft: ping this often (0: not)
}

type cheapStatus struct {
	Up       int64  `json:"up"`
	Failed   int64  `json:"failed"`
	Events   int64  `json:"events"`
	Err      string `json:"err,omitempty"`
	DialErr  string `json:"dial_err,omitempty"`
	Dialled  bool   `json:"dialled"`
	StatusAt int64  `json:"at"`
	LastAt   int64  `json:"last_at"` // unix ns of the latest event
}

type cheapReport struct {
	Report *hdrhistogram.Snapshot `json:"report"`
}

// RunCheapWorker runs a cheap-client worker: plan and commands from in, lines to out.
func RunCheapWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("cheap worker: reading the plan: %w", err)
	}
	var plan cheapPlan
	if err := json.Unmarshal(line, &plan); err != nil {
		return fmt.Errorf("cheap worker: the plan: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := newCheapGroup()
	defer g.close()
	var emitMu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(v any) {
		emitMu.Lock()
		defer emitMu.Unlock()
		_ = enc.Encode(v)
	}
	reports := make(chan struct{}, 16)
	go func() { // commands; EOF stops the worker as "stop" does
		defer cancel()
		for {
			line, err := br.ReadString('\n')
			switch strings.TrimSpace(line) {
			case "report":
				reports <- struct{}{}
			case "stop":
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var dialled atomic.Bool
	var dialErr atomic.Pointer[string]
	g.wg.Go(func() {
		if err := g.dial(ctx, plan.Proto, plan.URL, plan.Tokens, plan.Parallel); err != nil && ctx.Err() == nil {
			s := err.Error()
			dialErr.Store(&s)
		}
		dialled.Store(true)
	})
	if plan.Heartbeat > 0 {
		g.keepAlive(ctx, plan.Heartbeat)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reports:
			g.lat.mu.Lock()
			snap := g.lat.h.Export()
			g.lat.h.Reset()
			g.lat.mu.Unlock()
			emit(cheapReport{Report: snap})
		case <-tick.C:
			st := cheapStatus{Up: g.up.Load(), Failed: g.failed.Load(), Events: g.events.Load(), Dialled: dialled.Load(),
				LastAt: g.lastAt.Load(), StatusAt: time.Now().UnixMilli()}
			if e := g.firstErr.Load(); e != nil {
				st.Err = *e
			}
			if e := dialErr.Load(); e != nil {
				st.DialErr = *e
			}
			emit(st)
		}
	}
}

// cheapWorker is a cheap-client worker process as the scenario drives it.
type cheapWorker struct {
	*child
	stdin   io.WriteCloser
	mu      sync.Mutex
	status  cheapStatus
	reports chan *hdrhistogram.Snapshot
}

// startCheapWorker starts `bin cheap-worker` at nice and hands it plan.
func startCheapWorker(bin string, plan cheapPlan, nice int, stderr io.Writer) (*cheapWorker, error) {
	cmd, err := nicedCommand(nice, false, bin, CheapWorkerCommand)
	if err != nil {
		return nil, err
	}
	w := &cheapWorker{reports: make(chan *hdrhistogram.Snapshot, 4)}
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if w.child, err = startChild("cheap worker", cmd, stderr, w.read); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(plan)
	if _, err := w.stdin.Write(append(b, '\n')); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

func (w *cheapWorker) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if strings.HasPrefix(string(line), `{"report"`) {
			var rep cheapReport
			if json.Unmarshal(line, &rep) == nil {
				w.reports <- rep.Report
			}
			continue
		}
		var st cheapStatus
		if json.Unmarshal(line, &st) == nil {
			w.mu.Lock()
			w.status = st
			w.mu.Unlock()
		}
	}
}

func (w *cheapWorker) state() cheapStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// report asks for the latencies recorded since the last report.
func (w *cheapWorker) report(ctx context.Context) (*hdrhistogram.Snapshot, error) {
	if _, err := io.WriteString(w.stdin, "report\n"); err != nil {
		return nil, err
	}
	select {
	case s := <-w.reports:
		return s, nil
	case <-w.Exited():
		return nil, errors.New("loadtest: a cheap worker exited")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *cheapWorker) stop() {
	_, _ = io.WriteString(w.stdin, "stop\n")
	_ = w.stdin.Close()
	_ = w.terminate(10 * time.Second)
}
