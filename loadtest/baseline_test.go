package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The raw baselines of docs/architecture.md's performance budgets, measured by the same clients in the same run: a
// bare coder/websocket server in a child process, started by re-executing this test binary
// with rawServerEnv set. Mode "idle": a handler goroutine reading each connection, nothing
// else. Mode "fanout": also a writer goroutine per connection, fed by a channel.

const rawServerEnv = "LOADTEST_RAW_SERVER"

type rawServer struct {
	writer bool

	mu    sync.Mutex // guards the fields below
	conns map[*websocket.Conn]chan []byte
	seq   int64
}

func runRawServer(mode string, stdout io.Writer) error {
	if mode != "idle" && mode != "fanout" {
		return fmt.Errorf("%s=%q: want idle or fanout", rawServerEnv, mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := &rawServer{writer: mode == "fanout", conns: make(map[*websocket.Conn]chan []byte)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("POST /publish", s.handlePublish)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	fmt.Fprintf(stdout, "raw %s http://%s\n", mode, ln.Addr())
	return http.Serve(ln, mux) // until the benchmark kills this process
}

func (s *rawServer) handleWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Protocol}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.Background()
	s.mu.Lock()
	hello := fmt.Appendf(nil, `{"type":"hello","protocol":%q,"seq":%d}`, Protocol, s.seq)
	s.mu.Unlock()
	var ch chan []byte
	if s.writer {
		ch = make(chan []byte, 1024)
		ch <- hello // ahead of any event: the fan-out does not see ch yet
		go func() {
			for f := range ch {
				if c.Write(ctx, websocket.MessageText, f) != nil {
					c.CloseNow()
				}
			}
		}()
	} else if c.Write(ctx, websocket.MessageText, hello) != nil {
		return
	}
	s.mu.Lock()
	s.conns[c] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

// handlePublish fans out n user_change events (query n, default 1), each encoded once with
// its send time as the user's title, about the size of the frames weft sends.
func (s *rawServer) handlePublish(w http.ResponseWriter, r *http.Request) {
	if !s.writer {
		http.Error(w, "idle mode publishes nothing", http.StatusBadRequest)
		return
	}
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 1 {
		n = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first, dropped := s.seq+1, 0
	for range n {
		s.seq++
		frame := fmt.Appendf(nil, `{"type":"event","seq":%d,"event":{"type":"user_change","user":{"id":"U00000000",`+
			`"team":"T00000000","name":"sakura.nakamura","real_name":"Sakura Nakamura","display_name":"sakura",`+
			`"title":"%d","avatar_url":"https://avatars.example/U00000000.png","tz":"Asia/Tokyo","is_bot":false,`+
			`"deleted":false,"updated":%d}}}`, s.seq, time.Now().UnixNano(), s.seq+1)
		for _, ch := range s.conns {
			select {
			case ch <- frame:
			default:
				dropped++
			}
		}
	}
	fmt.Fprintf(w, `{"ok":true,"published":%d,"first_seq":%d,"last_seq":%d,"dropped":%d}`, n, first, s.seq, dropped)
}

func (s *rawServer) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_memstats_stack_inuse_bytes %d\ngo_goroutines %d\nraw_connections %d\n",
		ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine(), n)
}

// rawChild is a raw server running as a child process.
type rawChild struct {
	*child
	url string
}

// startRaw re-executes this test binary as a raw server in mode and returns once it listens.
func startRaw(ctx context.Context, mode string) (*rawChild, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), rawServerEnv+"="+mode)
	line := make(chan string, 1)
	c, err := startChild("the raw server", cmd, os.Stderr, func(stdout io.Reader) {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
	})
	if err != nil {
		return nil, err
	}
	rc := &rawChild{child: c}
	select {
	case l := <-line:
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "raw" {
			rc.Kill()
			return nil, fmt.Errorf("the raw server printed %q", l)
		}
		rc.url = f[2]
		return rc, nil
	case <-ctx.Done():
		rc.Kill()
		return nil, errors.New("the raw server did not start")
	}
}

// TestRawBaseline checks the baseline server the benchmarks compare weft with.
func TestRawBaseline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := startRaw(ctx, "fanout")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Kill()
	hc := &http.Client{Transport: newTransport()}
	defer hc.CloseIdleConnections()
	tgt := rawTarget(rc, hc)
	conns, hellos, err := DialMany(ctx, hc, tgt.wsURL, []string{"-"}, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(conns)
	if err := pollUntil(ctx, scenarioDeadline, func() (bool, error) {
		m, err := tgt.sample(ctx)
		return m.conns == 3, err
	}); err != nil {
		t.Fatal(err)
	}
	last, err := tgt.burst(ctx, 2)
	if err != nil || last != hellos[0].Seq+2 {
		t.Fatalf("burst: last seq %d, %v", last, err)
	}
	for i, c := range conns {
		for want := last - 1; want <= last; want++ {
			_, frame, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if seq, stamp, ok := parseEventFrame(frame); !ok || seq != want || stamp <= 0 {
				t.Fatalf("session %d: %s, want seq %d with a time as title", i, frame, want)
			}
		}
	}
}
