package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/client"
)

// The storm runs its clients in worker processes (a process may hold 20,000 files here): each
// worker reads a WorkerPlan as JSON on stdin, connects its clients, writes a WorkerStatus line
// on stdout every StatusEvery, and when stdin says "stop" (or closes) writes one WorkerFinal
// line and exits.

// WorkerClient is one client of a worker: who it is, and which proxy it dials.
type WorkerClient struct {
	Team  string `json:"team"`
	User  string `json:"user"`
	Token string `json:"token"`
	URL   string `json:"url"` // ws://proxy/ws
}

// WorkerPlan is what a storm worker is told to do.
type WorkerPlan struct {
	Clients []WorkerClient `json:"clients"`
	// DialRate paces the first connects (per second), so the worker is not its own herd.
	DialRate float64 `json:"dial_rate"`
	// ProbeEvery is how often each probing client sends users.info; ProbeShare of the clients
	// probe.
	ProbeEvery time.Duration `json:"probe_every"`
	ProbeShare float64       `json:"probe_share"`
	// StatusEvery is how often a status line is written; default 250ms.
	StatusEvery time.Duration `json:"status_every"`
}

// WorkerStatus is a worker's periodic line.
type WorkerStatus struct {
	At       int64            `json:"at"` // unix ms
	Up       int              `json:"up"` // clients with a live connection
	Refusals map[string]int64 `json:"refusals"`
	Nodes    map[string]int   `json:"nodes"` // live clients per edge
	// Events is the events the worker's clients have received so far.
	Events int64 `json:"events"`
}

// WorkerFinal is a worker's last line.
type WorkerFinal struct {
	Final   bool           `json:"final"`
	Clients []ClientReport `json:"clients"`
	// Probes are the users.info round trips of clients that never lost their connection:
	// [unix ms, µs, edge, proxy port] (edge: the number at the end of the answering edge's
	// name, -1 when it has none), so that a slow second can be traced to where it was slow.
	Probes [][4]int64 `json:"probes"`
	// ProbeErrors counts failed probes; ProbeError is the first failure.
	ProbeErrors int64  `json:"probe_errors"`
	ProbeError  string `json:"probe_error,omitempty"`
}

// ClientReport is one client's story.
type ClientReport struct {
	Team       string  `json:"team"`
	FirstNode  string  `json:"first_node"`
	Down       []int64 `json:"down,omitempty"`    // unix ms of each disconnect
	Up         []int64 `json:"up"`                // unix ms of each hello
	Resumed    []bool  `json:"resumed"`           // per hello
	Markers    []int64 `json:"markers,omitempty"` // seqs of user_change events received
	Duplicates int64   `json:"duplicates"`
	Err        string  `json:"err,omitempty"`
}

type workerClient struct {
	mu     sync.Mutex
	rep    ClientReport
	node   string
	up     bool
	probes [][4]int64
	perrs  int64
	perr   string
}

// RunStormWorker runs a worker: plan from in, status and final lines to out.
func RunStormWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	var plan WorkerPlan
	if err := json.NewDecoder(br).Decode(&plan); err != nil {
		return fmt.Errorf("storm worker: reading the plan: %w", err)
	}
	if plan.StatusEvery <= 0 {
		plan.StatusEvery = 250 * time.Millisecond
	}
	if plan.DialRate <= 0 {
		plan.DialRate = 500
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // "stop" or EOF on stdin ends the run
		for {
			line, err := br.ReadString('\n')
			if err != nil || strings.TrimSpace(line) == "stop" {
				cancel()
				return
			}
		}
	}()
	var refusals sync.Map   // reason → *atomic.Int64
	var events atomic.Int64 // received by all clients
	refuse := func(reason string) {
		v, _ := refusals.LoadOrStore(reason, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	hc := &http.Client{Transport: newTransport()}
	ws := make([]atomic.Pointer[workerClient], len(plan.Clients))
	var wg sync.WaitGroup
	enc := json.NewEncoder(out)
	var encMu sync.Mutex
	emit := func(v any) {
		encMu.Lock()
		enc.Encode(v)
		encMu.Unlock()
	}
	// Dial at the plan's pace, each client on its own goroutine (Dial waits for the hello).
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / plan.DialRate))
		defer tick.Stop()
		for i, pc := range plan.Clients {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wc := &workerClient{rep: ClientReport{Team: pc.Team}}
			ws[i].Store(wc)
			wg.Add(1)
			go func() {
				defer wg.Done()
				runWorkerClient(ctx, wc, pc, hc, plan, i, refuse, &events)
			}()
		}
	}()
	tick := time.NewTicker(plan.StatusEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			st := WorkerStatus{At: time.Now().UnixMilli(), Refusals: map[string]int64{}, Nodes: map[string]int{}, Events: events.Load()}
			for i := range ws {
				wc := ws[i].Load()
				if wc == nil {
					continue
				}
				wc.mu.Lock()
				if wc.up {
					st.Up++
					st.Nodes[wc.node]++
				}
				wc.mu.Unlock()
			}
			refusals.Range(func(k, v any) bool {
				st.Refusals[k.(string)] = v.(*atomic.Int64).Load()
				return true
			})
			emit(st)
		}
	}
	wg.Wait()
	fin := WorkerFinal{Final: true}
	for i := range ws {
		wc := ws[i].Load()
		if wc == nil {
			continue
		}
		fin.Clients = append(fin.Clients, wc.rep)
		fin.ProbeErrors += wc.perrs
		if fin.ProbeError == "" {
			fin.ProbeError = wc.perr
		}
		if len(wc.rep.Down) == 0 {
			fin.Probes = append(fin.Probes, wc.probes...)
		}
	}
	emit(fin)
	return nil
}

// runWorkerClient connects one client and keeps it until ctx ends, recording its story.
func runWorkerClient(ctx context.Context, wc *workerClient, pc WorkerClient, hc *http.Client, plan WorkerPlan, i int,
	refuse func(string), events *atomic.Int64) {
	// DialTimeout 30s, not the client's 10s: the worker runs at a low priority (it stands in
	// for devices elsewhere), and on a saturated machine it may read a handshake's answer late;
	// a client that gave up then would throw away a session the servers had set up.
	opts := client.Options{URL: pc.URL, Token: pc.Token, HTTPClient: hc, SkipBoot: true, DialTimeout: 30 * time.Second,
		Backoff: client.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second},
		OnConnect: func(h client.Hello) {
			wc.mu.Lock()
			if wc.rep.FirstNode == "" {
				wc.rep.FirstNode = h.Node
			}
			wc.node, wc.up = h.Node, true
			wc.rep.Up = append(wc.rep.Up, time.Now().UnixMilli())
			wc.rep.Resumed = append(wc.rep.Resumed, h.Resumed)
			wc.mu.Unlock()
		},
		OnReconnect: func(r client.Reconnect) {
			wc.mu.Lock()
			if wc.up {
				wc.up = false
				wc.rep.Down = append(wc.rep.Down, time.Now().UnixMilli())
			}
			wc.mu.Unlock()
			if r.Err != nil && r.Goodbye == nil {
				refuse(refusalReason(r.Err))
			} else if r.Goodbye != nil {
				refuse("goodbye_" + r.Goodbye.Reason)
			}
		},
	}
	var c *client.Client
	for ctx.Err() == nil {
		var err error
		c, err = client.Dial(ctx, opts)
		if err == nil {
			break
		}
		refuse(refusalReason(err))
		select { // the first connect's own retry: the client only retries after it is up
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(250+rand.IntN(1000)) * time.Millisecond):
		}
	}
	if c == nil {
		return
	}
	evDone := make(chan struct{})
	defer func() {
		c.Close()
		<-evDone // the reader appends to the report: it ends before the report is read
	}()
	go func() {
		defer close(evDone)
		for ev := range c.Events() {
			events.Add(1)
			if ev.Type == client.EventUserChange {
				wc.mu.Lock()
				wc.rep.Markers = append(wc.rep.Markers, ev.Seq)
				wc.mu.Unlock()
			}
		}
	}()
	probe := plan.ProbeEvery > 0 && float64(i%1000) < plan.ProbeShare*1000
	proxyPort := port(pc.URL)
	var tc <-chan time.Time
	if probe {
		t := time.NewTicker(plan.ProbeEvery)
		defer t.Stop()
		tc = t.C
	}
	for {
		select {
		case <-ctx.Done():
			wc.mu.Lock()
			wc.rep.Duplicates = c.Stats().Duplicates
			if err := c.Err(); err != nil {
				wc.rep.Err = err.Error()
			}
			wc.mu.Unlock()
			return
		case <-c.Done():
			wc.mu.Lock()
			wc.rep.Err = fmt.Sprint(c.Err())
			wc.up = false
			wc.mu.Unlock()
			<-ctx.Done()
		case <-tc:
			begin := time.Now()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.UsersInfo(pctx, pc.User)
			cancel()
			took := time.Since(begin)
			wc.mu.Lock()
			if err == nil {
				wc.probes = append(wc.probes, [4]int64{begin.UnixMilli(), took.Microseconds(), nodeNumber(wc.node), proxyPort})
			} else if wc.perrs++; wc.perr == "" {
				wc.perr = err.Error()
			}
			wc.mu.Unlock()
		}
	}
}

// nodeNumber is the number that ends a node's name (edge-3: 3), or -1.
func nodeNumber(name string) int64 {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, err := strconv.ParseInt(name[i:], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// port is the port of a URL's host, or -1.
func port(raw string) int64 {
	u, err := url.Parse(raw)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(u.Port(), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// refusalReason names why a connect failed: the protocol's error code with its HTTP status,
// or how the network failed.
func refusalReason(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		if e.Status != 0 {
			return fmt.Sprintf("%d_%s", e.Status, e.Code)
		}
		return e.Code
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return "connection_refused"
	case strings.Contains(s, "reset"), strings.Contains(s, "EOF"), strings.Contains(s, "closed"):
		return "connection_lost"
	case strings.Contains(s, "timeout"), strings.Contains(s, "deadline"):
		return "timeout"
	}
	return "other"
}
