package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// driftCheck checks the material, files by their path from the repository root: every
// Dockerfile, compose file (alone, or an override merged onto its base), Kubernetes manifest
// and kustomization (with components), systemd unit (alone and with each drop-in) with its env
// files, and Prometheus scrape config, told apart by their content and name, so that a new
// file is checked without a change here. It returns the problems, sorted, and the processes.
func driftCheck(h *driftHelp, files map[string][]byte) ([]string, []*driftProc) {
	seen := map[string]bool{}
	var problems []string
	report := func(format string, args ...any) {
		if s := fmt.Sprintf(format, args...); !seen[s] {
			seen[s] = true
			problems = append(problems, s)
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	images := driftDockerfiles(h, files, names, report)
	var (
		procs            []*driftProc
		after            []func()
		k8s, kust, compo []driftDoc
		byName           = map[string]*driftProc{} // compose services, for Prometheus's targets
		uses             []driftImageUse
	)
	use := func(where, image string) { uses = append(uses, driftImageUse{where, image}) }
	for _, name := range names {
		data := files[name]
		if ext := path.Ext(name); ext != ".yaml" && ext != ".yml" {
			continue
		}
		for _, d := range driftYAML(name, data, report) {
			kind, _ := d["kind"].(string)
			switch {
			case driftMap(d["services"]) != nil:
				compo = append(compo, driftDoc{name, d})
			case kind == "Kustomization" || kind == "Component":
				kust = append(kust, driftDoc{name, d})
			case kind != "" && d["apiVersion"] != nil:
				driftTag(d, name)
				k8s = append(k8s, driftDoc{name, d})
			case d["scrape_configs"] != nil:
				after = append(after, func() { driftPrometheus(name, d, byName, report) })
			}
		}
	}
	units := driftSystemdUnits(names, files, report)
	procs, after = append(procs, units...), append(after, func() { driftPostgres(units, nil, report) })
	for _, v := range driftComposeVariants(compo) {
		ps, check := driftCompose(v.file, v.m, files, images, use, report)
		for _, p := range ps {
			procs = append(procs, p)
			for _, n := range p.names {
				byName[n] = p
			}
		}
		after = append(after, check)
	}
	ps, check := driftKubernetes(k8s, kust, files, images, use, report)
	procs, after = append(procs, ps...), append(after, check)
	for _, p := range procs {
		driftCheckProc(h, p, report)
	}
	driftCheckImages(uses, images, report)
	for _, check := range after {
		check()
	}
	read := map[string]bool{}
	for _, p := range procs {
		for _, f := range p.envFiles {
			read[f] = true
		}
	}
	for _, name := range names {
		if path.Ext(name) == ".env" && !read[name] {
			report("%s: no unit or compose service reads this env file, so nothing holds it to a command", name)
		}
	}
	// After the processes: the subcommands they run are known (and their twins) from then on.
	for _, name := range names {
		if ext := path.Ext(name); ext == ".md" || ext == ".go" {
			continue
		}
		for _, l := range driftLooseScan(h, name, files[name]) { // unless a source understood the file and said it already
			said := false
			for _, p := range problems {
				said = said || strings.HasPrefix(p, l[0]) && strings.Contains(p, l[1]+" ")
			}
			if !said {
				report("%s: %s is no flag's environment twin in weft or weft-proxy", l[0], l[1])
			}
		}
	}
	sort.Strings(problems)
	return problems, procs
}

// driftLooseScan finds every WEFT_ name anywhere in a file (comments too) that no flag has,
// so that even what no source here understands cannot name a variable no binary reads.
func driftLooseScan(h *driftHelp, name string, data []byte) [][2]string {
	var out [][2]string
	for _, v := range driftWeftVar.FindAllString(string(data), -1) {
		if !h.isTwin(v) && v != "WEFT_EVENTS" { // the stream's name
			out = append(out, [2]string{name, v})
		}
	}
	return out
}

var driftWeftVar = regexp.MustCompile(`\bWEFT_[A-Z0-9_]*[A-Z0-9]\b`)

type driftDoc struct {
	file string
	m    map[string]any
}

func driftYAML(name string, data []byte, report driftReport) []map[string]any {
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			report("%s: %v", name, err)
			return docs
		}
		if m := driftMap(d); m != nil {
			docs = append(docs, m)
		}
	}
}

func driftMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func driftList(v any) []any         { l, _ := v.([]any); return l }

func driftStr(v any) string {
	if v == nil {
		return ""
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

func driftOr(v, def any) any {
	if v == nil {
		return def
	}
	return v
}

func driftIsWeft(argv0 string) bool {
	b := path.Base(argv0)
	return b == "weft" || b == "weft-proxy"
}

func driftGet(v any, keys ...string) any {
	for _, k := range keys {
		v = driftMap(v)[k]
	}
	return v
}

type driftLine struct {
	n    int // the first line's number
	text string
}

// driftLines splits a Dockerfile or a unit into logical lines, trimmed, a line ending in a
// backslash continued by the next.
func driftLines(data []byte) []driftLine {
	var out []driftLine
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := driftLine{n: i + 1, text: strings.TrimSpace(lines[i])}
		for strings.HasSuffix(l.text, "\\") && i+1 < len(lines) {
			i++
			l.text = strings.TrimSuffix(l.text, "\\") + " " + strings.TrimSpace(lines[i])
		}
		out = append(out, l)
	}
	return out
}

// driftStrings is a command: a list, or a string split at spaces.
func driftStrings(v any) []string {
	if s, ok := v.(string); ok {
		return strings.Fields(s)
	}
	var out []string
	for _, e := range driftList(v) {
		out = append(out, driftStr(e))
	}
	return out
}

// driftStage is one stage of a Dockerfile: what a container of its image runs by default.
type driftStage struct {
	file, name      string
	entrypoint, cmd []string
	health          []string
	healthShell     bool
	healthWhere     string
	expose          map[int]bool
}

type driftImages map[string][]*driftStage // by Dockerfile

// stage is a Dockerfile's stage by name, or its last (the default target) for "".
func (im driftImages) stage(dockerfile, target string) *driftStage {
	stages := im[dockerfile]
	for _, s := range stages {
		if s.name == target {
			return s
		}
	}
	if target == "" && len(stages) > 0 {
		return stages[len(stages)-1]
	}
	return nil
}

// byImage is the stage an image is named after ("registry/weft/weft-proxy:v1": weft-proxy).
func (im driftImages) byImage(image string) *driftStage {
	base := path.Base(image)
	base, _, _ = strings.Cut(base, "@")
	base, _, _ = strings.Cut(base, ":")
	var files []string
	for f := range im {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		if s := im.stage(f, base); s != nil && s.name == base {
			return s
		}
	}
	return nil
}

var driftInstruction = regexp.MustCompile(`(?i)^(FROM|ENTRYPOINT|CMD|HEALTHCHECK|EXPOSE)\s+(.*)$`)

// driftDockerfiles reads every Dockerfile's stages and checks its default command and health
// check: flags, and a health check on a port the stage exposes and a path weft serves.
func driftDockerfiles(h *driftHelp, files map[string][]byte, names []string, report driftReport) driftImages {
	im := driftImages{}
	for _, name := range names {
		if base := path.Base(name); base != "Dockerfile" && !strings.HasSuffix(base, ".Dockerfile") {
			continue
		}
		var st *driftStage
		for _, line := range driftLines(files[name]) {
			m := driftInstruction.FindStringSubmatch(line.text)
			if m == nil || st == nil && !strings.EqualFold(m[1], "FROM") {
				continue
			}
			where := fmt.Sprintf("%s:%d", name, line.n)
			switch arg := strings.TrimSpace(m[2]); strings.ToUpper(m[1]) {
			case "FROM":
				f := strings.Fields(arg)
				st = &driftStage{file: name, expose: map[int]bool{}}
				if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
					st.name = f[len(f)-1]
				}
				im[name] = append(im[name], st)
			case "ENTRYPOINT", "CMD":
				var argv []string
				if err := yaml.Unmarshal([]byte(arg), &argv); err != nil || !strings.HasPrefix(arg, "[") {
					report("%s: %s in shell form needs a shell, which the image has not", where, m[1])
				}
				if strings.EqualFold(m[1], "CMD") {
					st.cmd = argv
				} else {
					st.entrypoint = argv
				}
			case "HEALTHCHECK":
				_, cmd, ok := strings.Cut(arg, "CMD ")
				if !ok {
					continue
				}
				st.healthWhere = where
				if err := yaml.Unmarshal([]byte(cmd), &st.health); err != nil || !strings.HasPrefix(strings.TrimSpace(cmd), "[") {
					st.health, st.healthShell = strings.Fields(cmd), true
				}
			case "EXPOSE":
				for _, p := range strings.Fields(arg) {
					n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
					st.expose[n] = true
				}
			}
		}
	}
	for _, stages := range im {
		for _, st := range stages {
			driftCheckImage(h, st, report)
		}
	}
	return im
}

func driftCheckImage(h *driftHelp, st *driftStage, report driftReport) {
	if argv := append(append([]string(nil), st.entrypoint...), st.cmd...); len(argv) > 0 {
		h.parse(fmt.Sprintf("%s: stage %s, ENTRYPOINT and CMD", st.file, st.name), argv, report)
	}
	if st.health == nil {
		return
	}
	if st.healthShell {
		report("%s: HEALTHCHECK is a shell command line, and the image has no shell", st.healthWhere)
	}
	inv := h.parse(st.healthWhere, st.health, report)
	if inv == nil || inv.role != "health" {
		return
	}
	raw, _ := inv.get("url")
	u, err := url.Parse(raw)
	if err != nil {
		report("%s: --url %q: %v", st.healthWhere, raw, err)
		return
	}
	if port, _ := strconv.Atoi(u.Port()); !st.expose[port] {
		report("%s: the health check asks port %d, which stage %s does not EXPOSE", st.healthWhere, port, st.name)
	}
	for role, listeners := range driftServes {
		for l := range listeners {
			if driftServed(role, l, u.Path) {
				return
			}
		}
	}
	report("%s: the health check asks %s, which no weft listener serves", st.healthWhere, u.Path)
}

// driftEnvFile reads an env file: KEY=VALUE lines; "#WEFT_X=…" lines, commented out, must
// still name a twin of the process's flags, for the day they are uncommented.
func driftEnvFile(name string, data []byte) (env, optional []driftEnv) {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		where := fmt.Sprintf("%s:%d", name, i+1)
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if k, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok && driftWeftVar.MatchString(k) && !strings.ContainsAny(k, " \t") {
				optional = append(optional, driftEnv{k, v, where, true})
			}
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		env = append(env, driftEnv{strings.TrimSpace(k), v, where, true})
	}
	return env, optional
}

// driftSystemdUnits reads every unit, alone and with each of its drop-ins (<unit>.d/*.conf, each
// an option to install or not), and resolves what each must start after.
func driftSystemdUnits(names []string, files map[string][]byte, report driftReport) []*driftProc {
	var procs []*driftProc
	byUnit := map[string]*driftProc{}
	for _, name := range names {
		if path.Ext(name) != ".service" {
			continue
		}
		p := driftSystemd(name, nil, files, report)
		procs, byUnit[path.Base(name)] = append(procs, p), p
		for _, d := range names {
			if path.Dir(d) == name+".d" && path.Ext(d) == ".conf" {
				procs = append(procs, driftSystemd(name, []string{d}, files, report))
			}
		}
	}
	for _, p := range procs {
		for _, u := range p.beforeNames {
			if q := byUnit[u]; q != nil {
				p.before = append(p.before, q)
			}
		}
	}
	return procs
}

// driftSystemd reads a unit, then its drop-ins, as systemd does: ExecStart is the process, the
// other Exec*= lines run beside it, in its environment (EnvironmentFile=, sampled beside the
// unit, and Environment=); a unit it both requires and starts after must have run first.
func driftSystemd(name string, dropins []string, files map[string][]byte, report driftReport) *driftProc {
	p := &driftProc{platform: "systemd", names: []string{path.Base(name)}, grace: 90 * time.Second, graceWhere: name + ": DefaultTimeoutStopSec"}
	creds := map[string]bool{}
	var credRefs [][2]string // where, what
	after, requires := map[string]bool{}, map[string]bool{}
	for _, file := range append([]string{name}, dropins...) {
		for _, line := range driftLines(files[file]) {
			k, v, ok := strings.Cut(line.text, "=")
			if !ok || strings.HasPrefix(k, "#") || strings.HasPrefix(k, ";") {
				continue
			}
			where := fmt.Sprintf("%s:%d", file, line.n)
			switch k = strings.TrimSpace(k); k {
			case "ExecStart":
				p.where, p.argv = where, driftExecArgv(v) // empty in a drop-in: reset
				for _, a := range p.argv {
					credRefs = append(credRefs, [2]string{where, a})
				}
			case "ExecStop", "ExecStopPost", "ExecStartPre", "ExecStartPost", "ExecReload":
				if argv := driftExecArgv(v); len(argv) > 0 && driftIsWeft(argv[0]) {
					p.hooks = append(p.hooks, driftHook{what: k, where: where, argv: argv})
					for _, a := range argv {
						credRefs = append(credRefs, [2]string{where, a})
					}
				}
			case "EnvironmentFile":
				optional := strings.HasPrefix(v, "-")
				sample := path.Join(path.Dir(name), path.Base(strings.TrimPrefix(v, "-")))
				data, ok := files[sample]
				if !ok && !optional {
					report("%s: EnvironmentFile %s has no sample %s beside the unit", where, v, sample)
				}
				env, opt := driftEnvFile(sample, data)
				p.env, p.optionalEnv = append(p.env, env...), append(p.optionalEnv, opt...)
				p.envFiles = append(p.envFiles, sample)
			case "Environment":
				for _, kv := range driftExecArgv(v) {
					if k, v, ok := strings.Cut(kv, "="); ok {
						p.env = append(p.env, driftEnv{k, v, where, true})
						credRefs = append(credRefs, [2]string{where, v})
					}
				}
			case "MemoryMax":
				p.memLimit, p.memWhere = driftSize(v, 1, "KMGTPE"), where
			case "TimeoutStopSec", "TimeoutSec":
				p.grace, p.graceWhere = driftSystemdSpan(v), where
			case "LoadCredential", "LoadCredentialEncrypted", "SetCredential":
				id, _, _ := strings.Cut(v, ":")
				creds[id] = true
			case "After":
				for _, u := range strings.Fields(v) {
					after[u] = true
				}
			case "Requires", "BindsTo", "Requisite":
				for _, u := range strings.Fields(v) {
					requires[u] = true
				}
			}
		}
	}
	for _, ref := range credRefs {
		for _, m := range driftCredRef.FindAllStringSubmatch(ref[1], -1) {
			if !creds[m[1]] {
				report("%s: %s names credential %s, which no LoadCredential= loads", ref[0], ref[1], m[1])
			}
		}
	}
	for u := range requires {
		if after[u] {
			p.beforeNames = append(p.beforeNames, u)
		}
	}
	sort.Strings(p.beforeNames)
	return p
}

var driftCredRef = regexp.MustCompile(`(?:%d|\$\{?CREDENTIALS_DIRECTORY\}?)/([A-Za-z0-9_.-]+)`)

// driftExecArgv splits an Exec*= line as systemd does for the cases the material uses:
// prefixes (-, @, :, +, !), words, double or single quotes.
func driftExecArgv(v string) []string {
	v = strings.TrimLeft(strings.TrimSpace(v), "-@:+!|")
	var argv []string
	var cur strings.Builder
	quote, in := rune(0), false
	for _, r := range v {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				argv, in = append(argv, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		argv = append(argv, cur.String())
	}
	return argv
}

// driftSize reads a size with optional units (the letters of units, powers of 1024 from
// K; a trailing "i", "b" or "B" ignored), times base; 0 for none or infinity.
func driftSize(v string, base int64, units string) int64 {
	m := driftSizeRe.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return -1
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	mult := int64(1)
	if m[2] != "" && m[2] != "b" && m[2] != "B" {
		i := strings.Index(units, m[2])
		if i < 0 {
			return -1
		}
		mult = int64(1) << (10 * (i + 1))
	}
	return int64(f*float64(mult)) * base
}

var driftSizeRe = regexp.MustCompile(`^([0-9.]+)\s*([A-Za-z]?)[iIbB]?[bB]?$`)

// driftSystemdSpan reads a systemd time span: "90", "90s", "1min 30s", "2min".
func driftSystemdSpan(v string) time.Duration {
	v = strings.ReplaceAll(strings.TrimSpace(v), " ", "")
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	v = strings.NewReplacer("min", "m", "sec", "s", "hr", "h").Replace(v)
	d, _ := time.ParseDuration(v)
	return d
}

// driftPrometheus holds each static target that names a compose service to the process
// there: its port is the operator listener, its path served, its job named for the command.
func driftPrometheus(name string, d map[string]any, byName map[string]*driftProc, report driftReport) {
	for _, sc := range driftList(d["scrape_configs"]) {
		job := driftStr(driftGet(sc, "job_name"))
		metrics := driftStr(driftOr(driftGet(sc, "metrics_path"), "/metrics"))
		for _, stc := range driftList(driftGet(sc, "static_configs")) {
			for _, t := range driftList(driftGet(stc, "targets")) {
				host, port, ok := strings.Cut(driftStr(t), ":")
				p := byName[host]
				if !ok || p == nil || p.inv == nil || p.inv.listen == nil {
					continue
				}
				where := fmt.Sprintf("%s: job %s, target %s", name, job, driftStr(t))
				driftCheckProbe(p, p.inv, driftProbe{what: "Prometheus", where: where, port: port, path: metrics}, report)
				if role, ok := strings.CutPrefix(job, "weft-"); ok && role != p.inv.role {
					report("%s: a weft-%s job scrapes %s, which runs %s", where, role, host, p.inv.key)
				}
			}
		}
	}
}
