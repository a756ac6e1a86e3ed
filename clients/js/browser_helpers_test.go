package js

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/weft-edge/weft/internal/testkit"
)

// The browser tests' harness: a real `weft dev` (this module's binary, a process of its own)
// and a real headless Chromium driven over the DevTools protocol, both on loopback.

// devStack is a running `weft dev` and the URLs it printed.
type devStack struct {
	page, origin, ops, controlURL string
	cmd                           *exec.Cmd
	out                           *testkit.SyncBuffer
}

var (
	pageLine    = regexp.MustCompile(`(?m)^weft dev: open (http://\S+)/ in a browser`)
	originLine  = regexp.MustCompile(`(?m)^\s+origin\s+(http://\S+)`)
	opsLine     = regexp.MustCompile(`(?m)^\s+ops\s+(http://\S+)`)
	controlLine = regexp.MustCompile(`(?m)^\s+control\s+(http://\S+)`)
)

// startDev starts `weft dev` with the world size and activity rate given, waits for it to print
// where everything is, and stops it when the test ends.
func startDev(t testing.TB, size string, rate int) *devStack {
	t.Helper()
	bin := weftBin.Path(t)
	cmd := exec.Command(bin, "dev", "--addr", "127.0.0.1:0", "--origin-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0",
		"--size", size, "--rate", fmt.Sprint(rate), "--drain", "200ms", "--log-level", "warn")
	out := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("weft dev did not stop within 20 s of SIGTERM")
		}
	})
	testkit.EventuallyOr(t, 90*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("weft dev exited:\n%s", out.String())
		default:
		}
		return strings.Contains(out.String(), "\ntry:")
	}, "weft dev to print its URLs", func() { t.Logf("weft dev printed:\n%s", out.String()) })
	s := &devStack{cmd: cmd, out: out}
	text := out.String()
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *string
	}{{pageLine, &s.page}, {originLine, &s.origin}, {opsLine, &s.ops}, {controlLine, &s.controlURL}} {
		m := f.re.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("weft dev's output has no line matching %s:\n%s", f.re, text)
		}
		*f.dst = m[1]
	}
	if first, _, _ := strings.Cut(text, "\n"); !pageLine.MatchString(first) {
		t.Errorf("weft dev's first line is %q, want the page's URL", first)
	}
	return s
}

// devUser is one entry of /dev/users.
type devUser struct {
	Team, ID, Name, Token string
	RealName              string `json:"real_name"`
	DisplayName           string `json:"display_name"`
	TeamName              string `json:"team_name"`
}

func (s *devStack) users(t testing.TB) []devUser {
	t.Helper()
	var v struct{ Users []devUser }
	s.getJSON(t, s.page+"/dev/users", &v)
	if len(v.Users) < 4 {
		t.Fatalf("/dev/users lists %d users, want at least 4", len(v.Users))
	}
	return v.Users
}

func (s *devStack) getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// api calls the edge's HTTP API as user u (docs/protocol.md section 5).
func (s *devStack) api(t testing.TB, u devUser, method string, params, v any) {
	t.Helper()
	body, _ := json.Marshal(params)
	req, _ := http.NewRequest(http.MethodPost, s.page+"/api/"+method, strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/%s: %s %s", method, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("/api/%s: %v: %s", method, err, b)
	}
}

// post posts a message through the reference origin's admin API, as a chat backend would.
func (s *devStack) post(t testing.TB, team, channel, user, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"type": "message", "channel": channel, "user": user, "text": text})
	resp, err := http.Post(s.origin+"/origin/admin/teams/"+team+"/events", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("posting a message: %s %s", resp.Status, b)
	}
}

// control asks weft dev's control endpoint to kill, start or restart its edge.
func (s *devStack) control(t testing.TB, verb string) {
	t.Helper()
	resp, err := http.Post(s.controlURL+"/regions/default/"+verb, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("control %s: %s %s", verb, resp.Status, b)
	}
}

// metric sums the edge's samples of name whose labels include match, from its /metrics.
func (s *devStack) metric(t testing.TB, name, match string) float64 {
	t.Helper()
	resp, err := http.Get(s.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, match) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// browser is a headless Chromium with a tab, and what the tab sent to the edge.
type browser struct {
	ctx context.Context
	// usersInfo counts users.info requests the page sent: WebSocket frames and HTTP requests.
	usersInfo atomic.Int64
	mu        sync.Mutex
	sent      []string // every WebSocket frame the page sent
	received  []string // and every one it received
}

// annotatedUsers lists the users the edge attached to events it sent the page.
func (b *browser) annotatedUsers() map[string]bool {
	b.mu.Lock()
	frames := slices.Clone(b.received)
	b.mu.Unlock()
	users := map[string]bool{}
	for _, f := range frames {
		for line := range strings.Lines(f) { // one message a frame, or several a line each
			var m struct {
				Type        string
				Annotations struct{ Users map[string]json.RawMessage }
			}
			if json.Unmarshal([]byte(line), &m) == nil && m.Type == "event" {
				for id := range m.Annotations.Users {
					users[id] = true
				}
			}
		}
	}
	return users
}

// chromium finds Debian's Chromium (`.ci/run` installs it); a machine without it fails the
// browser tests rather than skipping them.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: the page's tests need headless Chromium (apt-get install chromium; .ci/run does)")
	return ""
}

// newBrowser starts headless Chromium at 1280×800, as the README's screenshots are, and
// watches the tab's network traffic. Host names other than loopback resolve to nothing, so a
// page that tried to reach the internet would show it in its errors rather than reach it.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // the tests may run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts Chromium and opens the tab, unbounded: see chromedp.Run
		t.Fatalf("starting Chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventWebSocketFrameSent:
			b.mu.Lock()
			b.sent = append(b.sent, string(ev.Response.PayloadData))
			b.mu.Unlock()
			if strings.Contains(string(ev.Response.PayloadData), `"users.info"`) {
				b.usersInfo.Add(1)
			}
		case *network.EventWebSocketFrameReceived:
			b.mu.Lock()
			b.received = append(b.received, string(ev.Response.PayloadData))
			b.mu.Unlock()
		case *network.EventRequestWillBeSent:
			if strings.Contains(ev.Request.URL, "/api/users.info") {
				b.usersInfo.Add(1)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	b.run(t, chromedp.EmulateViewport(1280, 800)) // the window's size holds the browser's frame too
	return b
}

// run runs actions in the tab, bounded so that a stuck page fails the test instead of hanging it.
func (b *browser) run(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page and returns its value as T.
func eval[T any](t testing.TB, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page into v, through JSON.
func (b *browser) eval(t testing.TB, expr string, v any) {
	t.Helper()
	js := eval[string](t, b, "JSON.stringify("+expr+")")
	if err := json.Unmarshal([]byte(js), v); err != nil {
		t.Fatalf("browser: %s gave %s: %v", expr, js, err)
	}
}

// waitJS waits until expr is truthy in the page. It polls: the page is another process.
func (b *browser) waitJS(t testing.TB, expr, what string) {
	t.Helper()
	testkit.EventuallyOr(t, 45*time.Second, func() bool {
		return eval[bool](t, b, "!!("+expr+")")
	}, what, func() {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('#conn-state')||{}).textContent||''`))
		t.Logf("the page's connection state: %q", state)
	})
}

// screenshot saves the tab's viewport as a PNG in $WEFT_SCREENSHOTS (the README's come from
// `WEFT_SCREENSHOTS=docs/images go test -run TestPage ./clients/js/`), or in the test's
// temporary folder; either way it checks that a picture was made.
func (b *browser) screenshot(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, not a PNG", name, len(png))
	}
	dir := os.Getenv("WEFT_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // relative to the repository, not to this package
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
