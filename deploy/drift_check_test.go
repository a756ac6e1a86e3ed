package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/cli"
)

// The drift checker: the material in deploy/ against what the binaries say of themselves.
// Sources (drift_sources_test.go) turn each file into processes (driftProc): a weft
// invocation, the environment it runs with, and what runs beside it or reaches it (probes,
// hooks, health checks, Prometheus). This file checks each process against the binaries'
// -h and the paths each listener serves.

// driftFlag is one flag of one command, as its -h prints it.
type driftFlag struct {
	name, env, def string
	isBool         bool
}

// driftHelp is every command of both binaries, keyed "weft edge", "weft-proxy" (the proxy
// itself), "weft-proxy health", and the subcommands the material runs ("weft origin migrate"),
// learnt from the binary as the material names them.
type driftHelp struct {
	weft string // the binary, asked for subcommands

	mu    sync.Mutex
	cmds  map[string]map[string]driftFlag // nil for a word asked about that is no subcommand
	twins map[string]bool                 // every twin of every command, for the loose scan
}

// command is the flags of a command by its key, nil for none.
func (h *driftHelp) command(key string) map[string]driftFlag {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmds[key]
}

// isTwin reports whether v is the environment twin of a flag of any command known so far.
func (h *driftHelp) isTwin(v string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.twins[v]
}

// subcommand is the flags of `weft <command> <word>`, nil when word is no subcommand of it:
// one is when the binary answers `weft <command> <word> -h` with that usage (weft origin
// migrate, weft origin seed). `weft -h` lists only the commands, so each word the material
// puts after a command is asked about, once.
func (h *driftHelp) subcommand(key, word string) map[string]driftFlag {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := key + " " + word
	if flags, asked := h.cmds[sub]; asked {
		return flags
	}
	h.cmds[sub] = nil
	bin, cmd, ok := strings.Cut(key, " ")
	if !ok || bin != "weft" || h.weft == "" || !driftWord.MatchString(word) {
		return nil
	}
	if out, err := driftExec(h.weft, cmd, word, "-h"); err == nil && strings.HasPrefix(out, "usage: "+sub+" [flags]") {
		h.cmds[sub] = driftHelpFlags(out, h.twins)
	}
	return h.cmds[sub]
}

var driftWord = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// driftHelpFlags reads the flags a command's -h lists, adding their twins to twins.
func driftHelpFlags(out string, twins map[string]bool) map[string]driftFlag {
	flags := map[string]driftFlag{}
	for _, line := range strings.Split(out, "\n") {
		if m := driftFlagLine.FindStringSubmatch(line); m != nil {
			def, err := strconv.Unquote(m[3])
			if err != nil {
				def = m[3] // not Go's quoting: keep it as printed
			}
			flags[m[1]] = driftFlag{name: m[1], env: m[2], def: def, isBool: def == "true" || def == "false"}
			twins[m[2]] = true
		}
	}
	return flags
}

var (
	driftFlagLine    = regexp.MustCompile(`^  --([a-z0-9][a-z0-9-]*) \[([A-Z0-9_]+)\] \(default (".*")\)$`)
	driftCommandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)  +\S`)

	driftHelpMu     sync.Mutex
	driftHelpCached *driftHelp
)

// driftLoadHelp runs `weft -h`, `weft <command> -h` for every command it lists, and the same
// of weft-proxy (which takes some of weft's operator commands), once per test binary.
func driftLoadHelp(t *testing.T) *driftHelp {
	t.Helper()
	driftHelpMu.Lock()
	defer driftHelpMu.Unlock()
	if driftHelpCached != nil {
		return driftHelpCached
	}
	weft, proxy := weftBin.Path(t), weftProxyBin.Path(t)
	h := &driftHelp{weft: weft, cmds: map[string]map[string]driftFlag{}, twins: map[string]bool{}}
	top, err := driftExec(weft, "-h")
	if err != nil {
		t.Fatalf("weft -h: %v\n%s", err, top)
	}
	var commands []string
	in := false
	for _, line := range strings.Split(top, "\n") {
		switch m := driftCommandLine.FindStringSubmatch(line); {
		case line == "commands:":
			in = true
		case in && m != nil:
			commands = append(commands, m[1])
		case in && len(commands) > 0:
			in = false
		}
	}
	if len(commands) == 0 {
		t.Fatalf("weft -h lists no commands:\n%s", top)
	}
	add := func(key, out string) {
		if !strings.HasPrefix(out, "usage: "+key+" [flags]") {
			t.Fatalf("%s -h: no usage line for %q:\n%s", key, key, out)
		}
		h.cmds[key] = driftHelpFlags(out, h.twins)
	}
	for _, c := range commands {
		out, err := driftExec(weft, c, "-h")
		if err != nil {
			t.Fatalf("weft %s -h: %v\n%s", c, err, out)
		}
		add("weft "+c, out)
	}
	out, err := driftExec(proxy, "-h")
	if err != nil {
		t.Fatalf("weft-proxy -h: %v\n%s", err, out)
	}
	add("weft-proxy", out)
	for _, c := range commands { // weft-proxy's own subcommands answer -h with their usage
		if out, err := driftExec(proxy, c, "-h"); err == nil && strings.HasPrefix(out, "usage: weft-proxy "+c+" ") {
			add("weft-proxy "+c, out)
		}
	}
	driftHelpCached = h
	return h
}

// driftExec runs a binary with no WEFT_ variables of the caller's, so that -h prints the
// defaults, and returns its stdout.
func driftExec(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WEFT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return string(out), err
}

// driftServes is what each server serves on each listener that a probe, a hook or Prometheus
// may ask: the client port (--addr) and the operator listener (--ops-addr). A path ending in
// / is a prefix. TestDriftServedPaths holds
// it to the handlers' registrations in the source.
var driftServes = map[string]map[string][]string{
	"edge": {
		"client": {"/healthz", "/readyz"},
		"ops":    {"/metrics", "/healthz", "/readyz", "/debug/teams", "/drain", "/debug/pprof/"},
	},
	"proxy": {
		"client": {"/healthz", "/readyz"},
		"ops":    {"/metrics", "/healthz", "/readyz", "/debug/pprof/"},
	},
	"origin": {
		"client": {}, // the origin contract (docs/origin.md), nothing to probe
		"ops":    {"/metrics", "/healthz", "/debug/pprof/"},
	},
}

func driftServed(role, listener, p string) bool {
	for _, s := range driftServes[role][listener] {
		if p == s || strings.HasSuffix(s, "/") && strings.HasPrefix(p, s) {
			return true
		}
	}
	return false
}

// The drain's bounds, from the edge's code: POST /drain gives up after --drain plus
// edge/ops.go's drainMargin; SIGTERM's drain after --drain plus serveEdge's 10s
// (cmd/weft/edge.go).
const (
	driftDrainMargin   = 30 * time.Second
	driftSigtermMargin = 10 * time.Second
)

// driftEnv is one environment variable a process gets; value is "" and known false when it
// comes from elsewhere (a secret, the downward API).
type driftEnv struct {
	name, value, where string
	known              bool
}

// driftHook is a command run beside a process, in its environment: a probe's or health
// check's command, a preStop hook, an ExecStop.
type driftHook struct {
	what, where string
	argv        []string
	shell       bool // a shell command line, in an image without a shell
}

// driftProbe is a connection to a process from outside: an HTTP GET of path (a kubelet
// probe, a Prometheus scrape) or, with no path, only a port (a published port, a Service).
type driftProbe struct{ what, where, port, path string }

// driftProc is one weft process as the material runs it.
type driftProc struct {
	platform, where string // where: where its command line is written
	names           []string
	argv            []string
	env             []driftEnv
	optionalEnv     []driftEnv // commented out in an env file: must still be twins
	envFiles        []string   // the env files it reads, from the material
	hooks           []driftHook
	probes          []driftProbe
	ports           map[string]int // container ports by name
	memLimit        int64
	memWhere        string
	grace           time.Duration // how long the platform waits for it to stop; 0: unknown
	graceWhere      string
	// files are the files it reads whose content the material holds (a compose secret's file,
	// a Kubernetes Secret's key), by their path in the process.
	files map[string]driftFile
	// before are the processes that must have run to completion before it starts (a pod's
	// init containers, compose's service_completed_successfully, a unit's After= and
	// Requires=); beforeNames names them until a source resolves them.
	before      []*driftProc
	beforeNames []string

	inv *driftInv // resolved by driftCheckProc
}

// driftFile is the content of a file a process reads, and where the material holds it.
type driftFile struct {
	data []byte
	from string
}

// envVar is the process's environment variable name (any, not only WEFT_), the last one given.
func (p *driftProc) envVar(name string) (driftEnv, bool) {
	var found driftEnv
	ok := false
	for _, e := range p.env {
		if e.name == name {
			found, ok = e, true
		}
	}
	return found, ok
}

// flagWhere is where a flag's value was given: the command line, or the environment twin's line.
func (p *driftProc) flagWhere(name string) string {
	if _, ok := p.inv.args[name]; ok {
		return p.where
	}
	if e, ok := p.envVar(p.inv.flags[name].env); ok {
		return e.where
	}
	return p.where
}

// driftInv is a parsed invocation: which command, and its flags' values.
type driftInv struct {
	key, role string
	flags     map[string]driftFlag
	args      map[string]string // given on the command line
	env       map[string]string // given in the environment (unknown values as "")
	listen    map[int]string    // port → "client" or "ops"
	hosts     map[string]string // listener → host it binds
}

// get is a flag's value: the command line's, else the environment's, else the default.
func (v *driftInv) get(name string) (string, bool) {
	if s, ok := v.args[name]; ok {
		return s, true
	}
	if s, ok := v.env[name]; ok {
		return s, s != ""
	}
	if f, ok := v.flags[name]; ok {
		return f.def, true
	}
	return "", false
}

type driftReport func(format string, args ...any)

// parse resolves argv: the binary, the command and its flags, reporting what the binary would
// refuse. It returns nil for a command that is not weft's.
func (h *driftHelp) parse(where string, argv []string, report driftReport) *driftInv {
	if len(argv) == 0 {
		return nil
	}
	bin, rest := path.Base(argv[0]), argv[1:]
	var key, role string
	switch bin {
	case "weft":
		if len(rest) == 0 {
			report("%s: weft without a command", where)
			return nil
		}
		key, role, rest = "weft "+rest[0], rest[0], rest[1:]
		if h.command(key) == nil {
			report("%s: weft has no command %q", where, role)
			return nil
		}
		// A subcommand's role is both words: "origin migrate" runs no listener of the origin's.
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") && h.subcommand(key, rest[0]) != nil {
			key, role, rest = key+" "+rest[0], role+" "+rest[0], rest[1:]
		}
	case "weft-proxy":
		key, role = "weft-proxy", "proxy"
		if len(rest) > 0 && h.command("weft-proxy "+rest[0]) != nil {
			key, role, rest = "weft-proxy "+rest[0], rest[0], rest[1:]
		}
	default:
		return nil
	}
	inv := &driftInv{key: key, role: role, flags: h.command(key), args: map[string]string{}, env: map[string]string{}}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			report("%s: %s: unexpected argument %q (the binary exits on it)", where, key, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		f, ok := inv.flags[name]
		if !ok {
			report("%s: %s has no flag --%s", where, key, name)
			if !hasVal && i+1 < len(rest) && !strings.HasPrefix(rest[i+1], "-") {
				i++ // its value, most likely: not a second problem
			}
			continue
		}
		if !hasVal && f.isBool {
			val = "true"
		} else if !hasVal {
			if i+1 == len(rest) {
				report("%s: %s: --%s has no value", where, key, name)
				continue
			}
			i++
			val = rest[i]
		}
		inv.args[name] = val
	}
	return inv
}

// driftCheckProc checks one process: its flags and environment, then, for a server, what
// reaches it (ports, paths), what runs beside it, its memory limit and its stop window.
func driftCheckProc(h *driftHelp, p *driftProc, report driftReport) {
	inv := h.parse(p.where, p.argv, report)
	if inv == nil {
		return
	}
	p.inv = inv
	byEnv := map[string]driftFlag{}
	for _, f := range inv.flags {
		byEnv[f.env] = f
	}
	for i, e := range append(append([]driftEnv(nil), p.env...), p.optionalEnv...) {
		optional := i >= len(p.env)
		if !strings.HasPrefix(e.name, "WEFT_") {
			continue
		}
		f, ok := byEnv[e.name]
		if !ok {
			report("%s: %s is not the environment twin of a flag of %s", e.where, e.name, inv.key)
			continue
		}
		if optional {
			continue
		}
		if _, set := inv.args[f.name]; set {
			report("%s: %s is ignored: the command line gives --%s", e.where, e.name, f.name)
		}
		inv.env[f.name] = e.value
	}
	if driftServes[inv.role] == nil {
		return
	}
	inv.listen, inv.hosts = map[int]string{}, map[string]string{}
	for _, l := range []struct{ flag, name string }{{"addr", "client"}, {"ops-addr", "ops"}} {
		addr, known := inv.get(l.flag)
		if !known || addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			report("%s: --%s %q is not host:port", p.where, l.flag, addr)
			continue
		}
		inv.listen[n], inv.hosts[l.name] = l.name, host
	}
	if inv.role == "edge" {
		driftCheckAdvertise(p, inv, report)
	}
	for _, pr := range p.probes {
		driftCheckProbe(p, inv, pr, report)
	}
	drained := false
	for _, hk := range p.hooks {
		drained = driftCheckHook(h, p, inv, hk, report) || drained
	}
	if budget, known := inv.get("memory-budget"); known && budget != "" && p.memLimit > 0 {
		b, err := cli.ParseBytes(budget)
		if err != nil {
			report("%s: --memory-budget %q: %v", p.where, budget, err)
		} else if p.memLimit <= b {
			report("%s: memory limit of %d bytes is not above --memory-budget %s (%d bytes)", p.memWhere, p.memLimit, budget, b)
		}
	}
	if inv.role == "edge" && !drained && p.grace > 0 {
		if d := driftDuration(inv, "drain"); d > 0 && p.grace <= d+driftSigtermMargin {
			report("%s: %s to stop is not above what an edge's SIGTERM drain may take (--drain %s + %s)",
				p.graceWhere, p.grace, d, driftSigtermMargin)
		}
	}
}

func driftDuration(inv *driftInv, flag string) time.Duration {
	s, known := inv.get(flag)
	if !known {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d
}

// driftCheckAdvertise: an edge on every interface must say where proxies dial it, on the port
// it listens on.
func driftCheckAdvertise(p *driftProc, inv *driftInv, report driftReport) {
	addr, _ := inv.get("addr")
	adv, known := inv.get("advertise")
	if standalone, _ := inv.get("standalone"); standalone == "true" {
		return
	}
	if adv == "" && known {
		if cli.IsWildcard(addr) {
			report("%s: the edge listens on %s (every interface) without --advertise, which weft refuses", p.where, addr)
		}
		return
	}
	if adv == "" {
		return // from a secret or the downward API
	}
	_, advPort, err := net.SplitHostPort(adv)
	_, port, _ := net.SplitHostPort(addr)
	if err != nil {
		report("%s: --advertise %q is not host:port", p.where, adv)
	} else if advPort != port {
		report("%s: --advertise %s names port %s, but the edge listens on %s", p.where, adv, advPort, addr)
	}
}

// listener resolves a port (a number or a container port's name) to the listener on it.
func (p *driftProc) listener(inv *driftInv, port, where, what string, report driftReport) (string, bool) {
	n, err := strconv.Atoi(port)
	if err != nil {
		var ok bool
		if n, ok = p.ports[port]; !ok {
			report("%s: %s names port %q, which the container does not declare", where, what, port)
			return "", false
		}
	}
	l, ok := inv.listen[n]
	if !ok {
		report("%s: %s reaches port %d, where %s does not listen (%s)", where, what, n, inv.key, driftListening(inv))
	}
	return l, ok
}

func driftListening(inv *driftInv) string {
	var s []string
	for port, l := range inv.listen {
		flag := "--addr"
		if l == "ops" {
			flag = "--ops-addr"
		}
		s = append(s, fmt.Sprintf("%s %d", flag, port))
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "no listener"
	}
	return strings.Join(s, ", ")
}

func driftLoopback(host string) bool {
	return host == "localhost" || net.ParseIP(host).IsLoopback()
}

func driftCheckProbe(p *driftProc, inv *driftInv, pr driftProbe, report driftReport) {
	l, ok := p.listener(inv, pr.port, pr.where, pr.what, report)
	if !ok {
		return
	}
	if pr.path != "" && !driftServed(inv.role, l, pr.path) {
		report("%s: %s asks %s, which %s does not serve on its %s listener", pr.where, pr.what, pr.path, inv.key, l)
	}
	if host := inv.hosts[l]; driftLoopback(host) {
		report("%s: %s comes from outside, but the %s listener is bound to %s", pr.where, pr.what, l, host)
	}
}

// driftCheckHook checks a command run beside p; it reports whether it drains p.
func driftCheckHook(h *driftHelp, p *driftProc, inv *driftInv, hk driftHook, report driftReport) bool {
	if hk.shell {
		report("%s: %s is a shell command line, and weft's image has no shell", hk.where, hk.what)
	}
	hinv := h.parse(hk.where, hk.argv, report)
	if hinv == nil {
		return false
	}
	for _, e := range p.env { // the hook runs in p's environment
		for _, f := range hinv.flags {
			if _, given := hinv.args[f.name]; f.env == e.name && !given {
				report("%s: %s, meant for %s, also sets --%s of %s (%s)", e.where, e.name, inv.key, f.name, hinv.key, hk.what)
			}
		}
	}
	flag := map[string]string{"health": "url", "drain": "ops-url"}[hinv.role]
	if flag == "" {
		return false
	}
	raw, _ := hinv.get(flag)
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		report("%s: %s: --%s %q is not a URL with a port", hk.where, hk.what, flag, raw)
		return false
	}
	if !driftLoopback(u.Hostname()) {
		return false // another host's: nothing to hold it to here
	}
	l, ok := p.listener(inv, u.Port(), hk.where, hk.what, report)
	if !ok {
		return false
	}
	if host := inv.hosts[l]; !cli.IsWildcard(host+":0") && !driftLoopback(host) {
		report("%s: %s dials %s, but the %s listener is bound to %s", hk.where, hk.what, u.Hostname(), l, host)
	}
	if hinv.role == "health" {
		if !driftServed(inv.role, l, u.Path) {
			report("%s: %s asks %s, which %s does not serve on its %s listener", hk.where, hk.what, u.Path, inv.key, l)
		}
		return false
	}
	if !driftServed(inv.role, l, "/drain") {
		report("%s: %s drains %s on its %s listener, which serves no POST /drain", hk.where, hk.what, inv.key, l)
		return false
	}
	timeout, drain := driftDuration(hinv, "timeout"), driftDuration(inv, "drain")
	if timeout < drain+driftDrainMargin {
		report("%s: %s waits %s, less than the edge's drain may take (--drain %s + %s)", hk.where, hk.what, timeout, drain, driftDrainMargin)
	}
	if p.grace > 0 && p.grace <= timeout {
		report("%s: %s to stop is not above the drain's --timeout %s (%s)", p.graceWhere, p.grace, timeout, hk.what)
	}
	return true
}
