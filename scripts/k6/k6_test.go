// Package k6 holds a k6 script for weft (weft.js) and its test. k6 itself cannot be installed
// here (it is AGPL and has no Debian package), so the test runs the script in goja (the
// JavaScript engine k6 is built on) with the few k6 modules it imports implemented after k6's
// documented behaviour, against a real `weft dev`: the script's tokens, frames and checks are
// what is tested, not k6.
package k6

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dop251/goja"

	"github.com/weft-edge/weft/loadtest"
)

// shim is the k6 runtime the script sees: checks and metrics are recorded for the test.
type shim struct {
	t      *testing.T
	vm     *goja.Runtime
	ctx    context.Context
	hc     *http.Client
	checks map[string][2]int // name → passes, fails
	trends map[string][]float64
	counts map[string]float64
}

var (
	importDefault = regexp.MustCompile(`(?m)^import (\w+) from '([\w/]+)';`)
	importNamed   = regexp.MustCompile(`(?m)^import \{([^}]*)\} from '([\w/]+)';`)
	exportDecl    = regexp.MustCompile(`(?m)^export (function|const) `)
)

// load reads weft.js and turns its ES module syntax into a script goja runs: imports become
// lookups in the shim's modules, exports plain declarations.
func (s *shim) load(env map[string]string) {
	src, err := os.ReadFile("weft.js")
	if err != nil {
		s.t.Fatal(err)
	}
	js := importDefault.ReplaceAllString(string(src), "const $1 = __k6['$2'];")
	js = importNamed.ReplaceAllString(js, "const {$1} = __k6['$2'];")
	js = exportDecl.ReplaceAllString(js, "$1 ")
	s.vm.Set("__ENV", env)
	s.vm.Set("__k6", s.modules())
	if _, err := s.vm.RunScript("weft.js", js); err != nil {
		s.t.Fatalf("weft.js: %v", err)
	}
}

// call runs the script's function name as VU vu, iteration iter.
func (s *shim) call(name string, vu, iter int, arg goja.Value) goja.Value {
	s.vm.Set("__VU", vu)
	s.vm.Set("__ITER", iter)
	fn, ok := goja.AssertFunction(s.vm.Get(name))
	if !ok {
		s.t.Fatalf("weft.js has no function %s", name)
	}
	v, err := fn(goja.Undefined(), arg)
	if err != nil {
		s.t.Fatalf("%s (vu %d, iter %d): %v", name, vu, iter, err)
	}
	return v
}

func (s *shim) modules() map[string]any {
	vm := s.vm
	check := func(val goja.Value, sets map[string]goja.Value) bool {
		all := true
		for name, f := range sets {
			fn, _ := goja.AssertFunction(f)
			ok := false
			if fn != nil {
				r, err := fn(goja.Undefined(), val)
				ok = err == nil && r.ToBoolean()
			}
			c := s.checks[name]
			if ok {
				c[0]++
			} else {
				c[1]++
				all = false
			}
			s.checks[name] = c
		}
		return all
	}
	metric := func(kind string) func(goja.ConstructorCall) *goja.Object {
		return func(call goja.ConstructorCall) *goja.Object {
			name := call.Argument(0).String()
			call.This.Set("add", func(v float64, _ goja.Value) {
				if kind == "trend" {
					s.trends[name] = append(s.trends[name], v)
				} else {
					s.counts[name] += v
				}
			})
			return nil
		}
	}
	return map[string]any{
		"k6":         map[string]any{"check": check},
		"k6/metrics": map[string]any{"Trend": metric("trend"), "Counter": metric("counter")},
		"k6/http": map[string]any{
			"get": func(url string, params goja.Value) goja.Value { return s.request("GET", url, "", params) },
			"post": func(url, body string, params goja.Value) goja.Value {
				return s.request("POST", url, body, params)
			},
		},
		"k6/crypto": map[string]any{"hmac": func(alg, secret, data, enc string) string {
			if alg != "sha256" || enc != "base64rawurl" {
				panic(vm.NewTypeError("shim: hmac %s/%s not implemented", alg, enc))
			}
			m := hmac.New(sha256.New, []byte(secret))
			m.Write([]byte(data))
			return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}},
		"k6/encoding": map[string]any{"b64encode": func(data, enc string) string {
			if enc != "rawurl" {
				panic(vm.NewTypeError("shim: b64encode %s not implemented", enc))
			}
			return base64.RawURLEncoding.EncodeToString([]byte(data))
		}},
		"k6/ws": map[string]any{"connect": s.connect},
	}
}

// request is k6/http's get and post: a response with status, body and json(path), where path
// is a gjson-style dotted path ("users.0.id").
func (s *shim) request(method, url, body string, params goja.Value) goja.Value {
	req, err := http.NewRequestWithContext(s.ctx, method, url, strings.NewReader(body))
	if err != nil {
		panic(s.vm.NewGoError(err))
	}
	if params != nil && !goja.IsUndefined(params) {
		if h := params.ToObject(s.vm).Get("headers"); h != nil && !goja.IsUndefined(h) {
			for k, v := range h.Export().(map[string]any) {
				req.Header.Set(k, fmt.Sprint(v))
			}
		}
	}
	res := s.vm.NewObject()
	resp, err := s.hc.Do(req)
	if err != nil {
		res.Set("status", 0)
		return res
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	res.Set("status", resp.StatusCode)
	res.Set("body", string(data))
	res.Set("json", func(path string) any {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return nil
		}
		for _, p := range strings.Split(path, ".") {
			if path == "" {
				break
			}
			switch x := v.(type) {
			case map[string]any:
				v = x[p]
			case []any:
				i, err := strconv.Atoi(p)
				if err != nil || i >= len(x) {
					return nil
				}
				v = x[i]
			default:
				return nil
			}
		}
		return v
	})
	return res
}

// connect is k6/ws's connect: it runs the socket's event loop (messages, timers) on the
// caller's goroutine, like k6's per-VU loop, until the socket closes.
func (s *shim) connect(url string, params, cb goja.Value) goja.Value {
	opts := &websocket.DialOptions{HTTPClient: s.hc, HTTPHeader: http.Header{}}
	if h := params.ToObject(s.vm).Get("headers"); h != nil && !goja.IsUndefined(h) {
		for k, v := range h.Export().(map[string]any) {
			if strings.EqualFold(k, "Sec-WebSocket-Protocol") {
				opts.Subprotocols = append(opts.Subprotocols, fmt.Sprint(v))
			} else {
				opts.HTTPHeader.Set(k, fmt.Sprint(v))
			}
		}
	}
	c, resp, err := websocket.Dial(s.ctx, url, opts)
	res := s.vm.NewObject()
	if resp != nil {
		res.Set("status", resp.StatusCode)
	}
	if err != nil {
		return res
	}
	defer c.CloseNow()
	handlers := map[string]goja.Callable{}
	type timer struct {
		at    time.Time
		fn    goja.Callable
		every time.Duration // 0: once
	}
	var timers []*timer
	closed := false
	sock := s.vm.NewObject()
	sock.Set("on", func(ev string, fn goja.Callable) { handlers[ev] = fn })
	sock.Set("send", func(msg string) { c.Write(s.ctx, websocket.MessageText, []byte(msg)) })
	sock.Set("close", func() { closed = true })
	sock.Set("setTimeout", func(fn goja.Callable, ms float64) {
		timers = append(timers, &timer{at: time.Now().Add(time.Duration(ms) * time.Millisecond), fn: fn})
	})
	sock.Set("setInterval", func(fn goja.Callable, ms float64) {
		d := time.Duration(ms) * time.Millisecond
		timers = append(timers, &timer{at: time.Now().Add(d), fn: fn, every: d})
	})
	fire := func(fn goja.Callable, args ...goja.Value) {
		if _, err := fn(goja.Undefined(), args...); err != nil {
			panic(err)
		}
	}
	fn, _ := goja.AssertFunction(cb)
	fire(fn, sock)
	msgs := make(chan string, 64)
	go func() {
		defer close(msgs)
		for {
			_, b, err := c.Read(s.ctx)
			if err != nil {
				return
			}
			msgs <- string(b)
		}
	}()
	// The loop is single-threaded, as k6's is: handlers and timers never run concurrently.
	for !closed {
		var next *timer
		for _, tm := range timers {
			if tm != nil && (next == nil || tm.at.Before(next.at)) {
				next = tm
			}
		}
		var due <-chan time.Time
		var wait *time.Timer
		if next != nil {
			wait = time.NewTimer(time.Until(next.at))
			due = wait.C
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				closed = true
			} else if h := handlers["message"]; h != nil {
				fire(h, s.vm.ToValue(m))
			}
		case <-due:
			if next.every > 0 {
				next.at = next.at.Add(next.every)
			} else {
				for i := range timers {
					if timers[i] == next {
						timers[i] = nil
					}
				}
			}
			fire(next.fn)
		case <-s.ctx.Done():
			closed = true
		}
		if wait != nil {
			wait.Stop()
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	return res
}

func newShim(t *testing.T, ctx context.Context, hc *http.Client) *shim {
	return &shim{t: t, vm: goja.New(), ctx: ctx, hc: hc, checks: map[string][2]int{}, trends: map[string][]float64{},
		counts: map[string]float64{}}
}

// TestScriptAgainstWeftDev runs weft.js's setup, API and WebSocket functions against a
// spawned `weft dev --size small`, and checks that every check it makes passes and that the
// WebSocket sessions timed their replies; with the wrong token secret, its checks fail.
func TestScriptAgainstWeftDev(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := loadtest.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tg, err := loadtest.Spawn(ctx, bin, os.Stderr, "--size", "small", "--drain", "100ms")
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	env := map[string]string{"WEFT_URL": tg.URL, "WEFT_ORIGIN": tg.OriginURL, "WEFT_SESSION_MS": "1500"}

	s := newShim(t, ctx, tg.HTTP)
	s.load(env)
	opts, err := s.vm.RunString("options")
	if err != nil || opts.ToObject(s.vm).Get("scenarios") == nil {
		t.Fatalf("options: %v", err)
	}
	data := s.call("setup", 0, 0, goja.Undefined())
	for i := range 20 {
		s.call("api", 1+i%4, i, data)
	}
	for vu := 1; vu <= 2; vu++ {
		s.call("sockets", vu, 0, data)
	}
	for _, name := range []string{"origin lists the team", "api: 200", "api: ok and the user", "ws: hello for my team",
		"ws: reply ok", "ws: upgraded (101)", "ws: hello received"} {
		c := s.checks[name]
		if c[0] == 0 || c[1] != 0 {
			t.Errorf("check %q: %d passed, %d failed", name, c[0], c[1])
		}
	}
	if n := len(s.trends["weft_ws_reply"]); n < 10 {
		t.Errorf("weft_ws_reply has %d samples: two 1.5 s sessions sending every 100 ms should give about 28", n)
	}

	// The checks are not vacuous: tokens signed with another secret are refused.
	bad := newShim(t, ctx, tg.HTTP)
	env["WEFT_TOKEN_SECRET"] = "not-the-secret-of-this-stack"
	bad.load(env)
	data = bad.call("setup", 0, 0, goja.Undefined())
	bad.call("api", 1, 0, data)
	bad.call("sockets", 1, 0, data)
	for _, name := range []string{"api: 200", "ws: upgraded (101)", "ws: hello received"} {
		if c := bad.checks[name]; c[1] == 0 {
			t.Errorf("check %q with a wrong secret: %d passed, none failed", name, c[0])
		}
	}
}
