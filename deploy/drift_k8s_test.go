package deploy

import (
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The container sources: Kubernetes manifests (with kustomize's patches) and compose files.

// driftTag marks every map of a manifest with the file it was written in, so that a problem
// in a merged object names the file that holds the line at fault.
func driftTag(v any, file string) {
	switch v := v.(type) {
	case map[string]any:
		v["\x00file"] = file
		for _, e := range v {
			driftTag(e, file)
		}
	case []any:
		for _, e := range v {
			driftTag(e, file)
		}
	}
}

// driftFrom is the file that set key in m (a patch, or the manifest itself).
func driftFrom(m map[string]any, key string) string {
	if f, ok := m["\x00file:"+key].(string); ok {
		return f
	}
	f, _ := m["\x00file"].(string)
	return f
}

// driftMergeKeys are the lists a strategic merge patch merges element by element, by this
// key (kustomize's patches: path in a kustomization); every other list is replaced.
var driftMergeKeys = map[string]string{
	"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
	"volumeMounts": "mountPath", "ports": "containerPort",
}

// driftMerge applies a strategic merge patch, as far as the material uses one: maps merge,
// the lists above merge by key (new elements first, as kustomize puts them; "$patch:
// replace" replaces the list, an element's "$patch: delete" removes its namesake), every
// other value is replaced.
func driftMerge(base, patch map[string]any, file string) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, pv := range patch {
		if strings.HasPrefix(k, "\x00") || k == "$patch" {
			continue
		}
		if pm, bm := driftMap(pv), driftMap(out[k]); pm != nil && bm != nil {
			out[k] = driftMerge(bm, pm, file)
			continue
		}
		if merged, ok := driftMergeList(k, driftList(out[k]), driftList(pv), file); ok {
			out[k] = merged
			continue
		}
		out[k], out["\x00file:"+k] = pv, file
	}
	return out
}

func driftMergeList(field string, base, patch []any, file string) ([]any, bool) {
	key := driftMergeKeys[field]
	if key == "" || base == nil || patch == nil {
		return nil, false
	}
	if field == "ports" && driftGet(base[0], "containerPort") == nil {
		key = "port" // a Service's
	}
	var added, kept []any
	replace, deleted := false, map[string]bool{}
	for _, e := range patch {
		switch driftStr(driftGet(e, "$patch")) {
		case "replace":
			replace = true
		case "delete":
			deleted[driftStr(driftGet(e, key))] = true
		default:
			kept = append(kept, e)
		}
	}
	if replace {
		return kept, true
	}
	var merged []any
	for _, be := range base {
		if !deleted[driftStr(driftGet(be, key))] {
			merged = append(merged, be)
		}
	}
	for _, pe := range kept {
		found := false
		for i, be := range merged {
			if driftStr(driftGet(be, key)) == driftStr(driftGet(pe, key)) {
				merged[i], found = driftMerge(driftMap(be), driftMap(pe), file), true
			}
		}
		if !found {
			added = append(added, pe)
		}
	}
	return append(added, merged...), true
}

// driftKubernetes turns manifests into processes: each kustomization built as kustomize builds
// it (driftKustomizer), and the manifests no kustomization reaches as they are. Its second
// value checks the Services and the PostgreSQL clients once the processes are.
func driftKubernetes(objs, kusts []driftDoc, files map[string][]byte, images driftImages, use func(where, image string), report driftReport) ([]*driftProc, func()) {
	b := &driftKustomizer{byFile: map[string][]driftDoc{}, byDir: map[string]driftDoc{}, files: files, used: map[string]bool{}, report: report}
	var order []string
	for _, o := range objs {
		if _, ok := b.byFile[o.file]; !ok {
			order = append(order, o.file)
		}
		b.byFile[o.file] = append(b.byFile[o.file], o)
	}
	var dirs []string
	for _, k := range kusts {
		b.byDir[path.Dir(k.file)] = k
		dirs = append(dirs, path.Dir(k.file))
	}
	sort.Strings(dirs)
	var variants [][]driftDoc
	for _, dir := range dirs {
		if driftStr(b.byDir[dir].m["kind"]) != "Component" { // a component is built by what includes it
			variants = append(variants, b.apply(b.byDir[dir], nil, nil))
		}
	}
	var loose []driftDoc
	for _, f := range order {
		if !b.used[f] {
			loose = append(loose, b.byFile[f]...)
		}
	}
	if len(loose) > 0 {
		variants = append(variants, loose)
	}
	var procs []*driftProc
	var checks []func()
	for _, v := range variants {
		ps, check := driftK8sVariant(v, images, use, report)
		procs, checks = append(procs, ps...), append(checks, check)
	}
	return procs, func() {
		for _, c := range checks {
			c()
		}
	}
}

// driftKustomizer builds kustomizations as far as the material uses kustomize: resources (files,
// and directories of other kustomizations), components, secret and ConfigMap generators, and
// strategic merge patches; not the transformers that change no process (namespace, images,
// labels, replicas), for which TestDriftKustomize renders with kustomize itself.
type driftKustomizer struct {
	byFile map[string][]driftDoc
	byDir  map[string]driftDoc // kustomizations and components, by directory
	files  map[string][]byte
	used   map[string]bool // manifest files some kustomization took, as a resource or a patch
	report driftReport
}

// apply builds kustomization k onto out (a component onto what includes it; a kustomization
// onto nothing): its resources, then its components, then its generators, then its patches.
func (b *driftKustomizer) apply(k driftDoc, stack []string, out []driftDoc) []driftDoc {
	dir := path.Dir(k.file)
	if slices.Contains(stack, dir) {
		b.report("%s: includes itself (%s)", k.file, strings.Join(append(stack, dir), " → "))
		return out
	}
	stack = append(stack, dir)
	for _, r := range driftList(k.m["resources"]) {
		p := path.Join(dir, driftStr(r))
		if sub, ok := b.byDir[p]; ok {
			out = append(out, b.apply(sub, stack, nil)...)
		} else if docs, ok := b.byFile[p]; ok {
			out = append(out, docs...)
			b.used[p] = true
		} else if _, ok := b.files[p]; !ok && !strings.Contains(driftStr(r), "://") {
			b.report("%s: resource %s is not in the material", k.file, driftStr(r))
		}
	}
	for _, c := range driftList(k.m["components"]) {
		p := path.Join(dir, driftStr(c))
		if ck, ok := b.byDir[p]; ok && driftStr(ck.m["kind"]) == "Component" {
			out = b.apply(ck, stack, out)
		} else {
			b.report("%s: component %s is no kustomize Component in the material", k.file, driftStr(c))
		}
	}
	for _, kind := range []string{"Secret", "ConfigMap"} {
		for _, g := range driftList(k.m[map[string]string{"Secret": "secretGenerator", "ConfigMap": "configMapGenerator"}[kind]]) {
			out = b.generate(k, kind, driftMap(g), out)
		}
	}
	var patches []string
	for _, p := range driftList(k.m["patches"]) {
		if f := driftStr(driftGet(p, "path")); f != "" {
			patches = append(patches, f)
		}
	}
	for _, f := range driftList(k.m["patchesStrategicMerge"]) {
		patches = append(patches, driftStr(f))
	}
	for _, f := range patches {
		p := path.Join(dir, f)
		b.used[p] = true
		for _, pd := range b.byFile[p] {
			found := false
			for i, o := range out {
				if driftStr(o.m["kind"]) == driftStr(pd.m["kind"]) && driftStr(driftGet(o.m, "metadata", "name")) == driftStr(driftGet(pd.m, "metadata", "name")) {
					out[i], found = driftDoc{o.file, driftMerge(o.m, pd.m, pd.file)}, true
				}
			}
			if !found {
				b.report("%s: patches %s %s, which no manifest defines", pd.file, driftStr(pd.m["kind"]), driftStr(driftGet(pd.m, "metadata", "name")))
			}
		}
	}
	return out
}

// generate adds what a secretGenerator or configMapGenerator entry makes (under its own name:
// the hash kustomize appends changes no reference here), each key's file marked as its source.
func (b *driftKustomizer) generate(k driftDoc, kind string, g map[string]any, out []driftDoc) []driftDoc {
	dir := path.Dir(k.file)
	name := driftStr(g["name"])
	data, sources := map[string]any{}, map[string]string{}
	for _, f := range driftList(g["files"]) {
		key, file, ok := strings.Cut(driftStr(f), "=")
		if !ok {
			key, file = path.Base(key), key
		}
		content, ok := b.files[path.Join(dir, file)]
		if !ok {
			b.report("%s: %s %s takes %s, which is not in the material", k.file, kind, name, file)
			continue
		}
		data[key], sources[key] = string(content), path.Join(dir, file)
	}
	for _, l := range driftList(g["literals"]) {
		if key, v, ok := strings.Cut(driftStr(l), "="); ok {
			data[key] = v
		}
	}
	if kind == "Secret" {
		for key, v := range data {
			data[key] = base64.StdEncoding.EncodeToString([]byte(v.(string)))
		}
	}
	doc := map[string]any{"apiVersion": "v1", "kind": kind, "metadata": map[string]any{"name": name}, "data": data}
	driftTag(doc, k.file)
	for key, src := range sources {
		data["\x00source:"+key] = src
	}
	if driftStr(g["behavior"]) == "merge" || driftStr(g["behavior"]) == "replace" {
		for i, o := range out {
			if driftStr(o.m["kind"]) == kind && driftStr(driftGet(o.m, "metadata", "name")) == name {
				if driftStr(g["behavior"]) == "merge" {
					doc = driftMerge(o.m, doc, k.file)
				}
				out[i] = driftDoc{k.file, doc}
				return out
			}
		}
	}
	return append(out, driftDoc{k.file, doc})
}

type driftPod struct {
	labels  map[string]any
	procs   []*driftProc
	servers []*driftPGServer
	ports   map[string]int // the PostgreSQL container's ports by name
}

func driftK8sVariant(docs []driftDoc, images driftImages, use func(where, image string), report driftReport) ([]*driftProc, func()) {
	configMaps, secrets := map[string]driftDoc{}, map[string]driftDoc{}
	for _, d := range docs {
		switch driftStr(d.m["kind"]) {
		case "ConfigMap":
			configMaps[driftStr(driftGet(d.m, "metadata", "name"))] = d
		case "Secret":
			secrets[driftStr(driftGet(d.m, "metadata", "name"))] = d
		}
	}
	var procs []*driftProc
	var pods []driftPod
	for _, d := range docs {
		kind, name := driftStr(d.m["kind"]), driftStr(driftGet(d.m, "metadata", "name"))
		tmpl := driftMap(driftGet(d.m, "spec", "template"))
		switch kind {
		case "CronJob":
			tmpl = driftMap(driftGet(d.m, "spec", "jobTemplate", "spec", "template"))
		case "Pod":
			tmpl = d.m
		}
		spec := driftMap(tmpl["spec"])
		if spec == nil {
			continue
		}
		grace, graceWhere := 30*time.Second, d.file+": "+kind+" "+name+" (default terminationGracePeriodSeconds)"
		if g, ok := spec["terminationGracePeriodSeconds"].(int); ok {
			grace, graceWhere = time.Duration(g)*time.Second, fmt.Sprintf("%s: %s %s terminationGracePeriodSeconds", driftFrom(spec, "terminationGracePeriodSeconds"), kind, name)
		}
		pod := driftPod{labels: driftMap(driftGet(tmpl, "metadata", "labels")), ports: map[string]int{}}
		inits := driftList(spec["initContainers"])
		var initProcs []*driftProc
		weftImage, weftImageWhere := "", ""
		for i, c := range append(append([]any(nil), inits...), driftList(spec["containers"])...) {
			cm := driftMap(c)
			ctx := fmt.Sprintf("%s %s, container %s", kind, name, driftStr(cm["name"]))
			image := driftStr(cm["image"])
			use(driftFrom(cm, "image")+": "+ctx, image)
			files := driftK8sFiles(cm, driftList(spec["volumes"]), secrets)
			if driftImageName(image) == "postgres" {
				pod.servers = append(pod.servers, driftK8sPostgres(cm, ctx, files, report))
				for _, pt := range driftList(cm["ports"]) {
					n, _ := strconv.Atoi(driftStr(driftGet(pt, "containerPort")))
					pod.ports[driftStr(driftGet(pt, "name"))] = n
				}
			}
			p := driftContainer(cm, ctx, configMaps, images, report)
			if p == nil {
				continue
			}
			// One release in a pod (weft and weft-proxy images of one tag): an init container's
			// migration by another release than the origin's beside it would leave a schema the
			// origin refuses.
			if weftImage == "" {
				weftImage, weftImageWhere = image, driftFrom(cm, "image")+": "+ctx
			} else if driftImageRelease(image) != driftImageRelease(weftImage) {
				report("%s: runs image %s, but %s runs %s: a pod's weft containers must run one release", driftFrom(cm, "image")+": "+ctx, image, weftImageWhere, weftImage)
			}
			p.grace, p.graceWhere, p.files = grace, graceWhere, files
			if i < len(inits) {
				initProcs = append(initProcs, p)
			} else {
				p.before = initProcs
				// Prometheus scrapes the pod's first container that is no init container.
				if ann := driftMap(driftGet(tmpl, "metadata", "annotations")); driftStr(ann["prometheus.io/scrape"]) == "true" && len(pod.procs) == len(initProcs) {
					p.probes = append(p.probes, driftProbe{what: "prometheus.io annotations", where: driftFrom(ann, "prometheus.io/port") + ": " + ctx,
						port: driftStr(ann["prometheus.io/port"]), path: driftStr(driftOr(ann["prometheus.io/path"], "/metrics"))})
				}
			}
			pod.procs = append(pod.procs, p)
			procs = append(procs, p)
		}
		pods = append(pods, pod)
	}
	return procs, func() {
		driftServices(docs, pods, report)
		var servers []*driftPGServer
		for _, pod := range pods {
			servers = append(servers, pod.servers...)
		}
		driftPostgres(procs, servers, report)
	}
}

// driftK8sFiles is the files a container's secret volumes give it whose content the variant
// holds (a Secret manifest, or a secretGenerator's file), by path in the container.
func driftK8sFiles(cm map[string]any, volumes []any, secrets map[string]driftDoc) map[string]driftFile {
	out := map[string]driftFile{}
	for _, vm := range driftList(cm["volumeMounts"]) {
		var sec map[string]any
		for _, v := range volumes {
			if driftStr(driftGet(v, "name")) == driftStr(driftGet(vm, "name")) {
				sec = driftMap(driftGet(v, "secret"))
			}
		}
		s, ok := secrets[driftStr(sec["secretName"])]
		if sec == nil || !ok {
			continue
		}
		content := map[string][]byte{}
		for k, v := range driftMap(s.m["data"]) {
			if b, err := base64.StdEncoding.DecodeString(driftStr(v)); err == nil && !strings.HasPrefix(k, "\x00") {
				content[k] = b
			}
		}
		for k, v := range driftMap(s.m["stringData"]) {
			if !strings.HasPrefix(k, "\x00") {
				content[k] = []byte(fmt.Sprint(v))
			}
		}
		rel := map[string]string{} // key → path in the volume
		for k := range content {
			rel[k] = k
		}
		if items := driftList(sec["items"]); items != nil {
			rel = map[string]string{}
			for _, it := range items {
				rel[driftStr(driftGet(it, "key"))] = driftStr(driftGet(it, "path"))
			}
		}
		mount, sub := driftStr(driftGet(vm, "mountPath")), driftStr(driftGet(vm, "subPath"))
		for k, r := range rel {
			c, ok := content[k]
			if !ok || sub != "" && sub != r {
				continue
			}
			from, _ := driftMap(s.m["data"])["\x00source:"+k].(string)
			if from == "" {
				from = fmt.Sprintf("%s: Secret %s, key %s", s.file, driftStr(driftGet(s.m, "metadata", "name")), k)
			}
			p := path.Join(mount, r)
			if sub != "" {
				p = mount
			}
			out[p] = driftFile{c, from}
		}
	}
	return out
}

// driftK8sPostgres is a container running the official postgres image: the user, database and
// password it creates on a first start. Services give it its names and ports (driftServices).
func driftK8sPostgres(cm map[string]any, ctx string, files map[string]driftFile, report driftReport) *driftPGServer {
	s := &driftPGServer{where: driftFrom(cm, "image") + ": " + ctx, hosts: map[string]bool{}, ports: map[string]bool{}}
	env := map[string]string{}
	for _, e := range driftList(cm["env"]) {
		n := driftStr(driftGet(e, "name"))
		env[n] = driftStr(driftGet(e, "value"))
		if n == "POSTGRES_PASSWORD" && driftGet(e, "value") != nil {
			report("%s: POSTGRES_PASSWORD puts the password in the manifest: give it as a Secret's file, POSTGRES_PASSWORD_FILE", driftFrom(driftMap(e), "value")+": "+ctx)
		}
	}
	s.user = env["POSTGRES_USER"]
	if s.user == "" {
		s.user = "postgres"
	}
	if s.db = env["POSTGRES_DB"]; s.db == "" {
		s.db = s.user
	}
	if f, ok := files[env["POSTGRES_PASSWORD_FILE"]]; ok {
		s.password = &f
	}
	return s
}

var driftVarRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// driftContainer is a container's process, nil for one that does not run weft.
func driftContainer(cm map[string]any, ctx string, configMaps map[string]driftDoc, images driftImages, report driftReport) *driftProc {
	command, args := driftStrings(cm["command"]), driftStrings(cm["args"])
	image := driftStr(cm["image"])
	if _, has := cm["command"]; !has {
		if st := images.byImage(image); st != nil {
			command = st.entrypoint
			if _, has := cm["args"]; !has {
				args = st.cmd
			}
		}
	}
	argv := append(append([]string(nil), command...), args...)
	where := driftFrom(cm, "args") + ": " + ctx
	if len(argv) == 0 || !driftIsWeft(argv[0]) {
		if len(argv) == 0 && strings.Contains(image, "weft") {
			report("%s: no command, and no Dockerfile stage named after image %q to tell which binary runs", where, image)
		}
		return nil
	}
	p := &driftProc{platform: "k8s", where: where, argv: argv, ports: map[string]int{}}
	defined, values := map[string]bool{}, map[string]string{}
	for _, ef := range driftList(cm["envFrom"]) {
		ref := driftMap(driftGet(ef, "configMapRef"))
		if ref == nil {
			continue
		}
		cmap, ok := configMaps[driftStr(ref["name"])]
		if !ok {
			if driftStr(ref["optional"]) != "true" {
				report("%s: envFrom names ConfigMap %s, which no manifest defines", driftFrom(ref, "name")+": "+ctx, driftStr(ref["name"]))
			}
			continue
		}
		data := driftMap(cmap.m["data"])
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !strings.HasPrefix(k, "\x00") {
				p.env = append(p.env, driftEnv{k, driftStr(data[k]), driftFrom(data, k) + ": ConfigMap " + driftStr(ref["name"]), true})
				defined[k], values[k] = true, driftStr(data[k])
			}
		}
	}
	for _, e := range driftList(cm["env"]) {
		em := driftMap(e)
		n, val := driftStr(em["name"]), driftStr(em["value"])
		w := driftFrom(em, "name") + ": " + ctx
		_, known := em["value"]
		val = driftVarRef.ReplaceAllStringFunc(val, func(ref string) string {
			v := ref[2 : len(ref)-1]
			if !defined[v] {
				report("%s: %s refers to $(%s), which is not defined before it: Kubernetes passes it unexpanded", w, n, v)
			}
			if s, ok := values[v]; ok {
				return s
			}
			return v // from the downward API or a secret: a name will do
		})
		p.env = append(p.env, driftEnv{n, val, w, known})
		defined[n] = true
		if known {
			values[n] = val
		}
	}
	for _, pt := range driftList(cm["ports"]) {
		n, _ := strconv.Atoi(driftStr(driftGet(pt, "containerPort")))
		p.ports[driftStr(driftGet(pt, "name"))] = n
	}
	for _, k := range []string{"readinessProbe", "livenessProbe", "startupProbe", "preStop", "postStart"} {
		pm := driftMap(cm[k])
		if k == "preStop" || k == "postStart" {
			pm = driftMap(driftGet(cm, "lifecycle", k))
		}
		if hg := driftMap(pm["httpGet"]); hg != nil {
			p.probes = append(p.probes, driftProbe{what: k, where: driftFrom(hg, "port") + ": " + ctx, port: driftStr(hg["port"]), path: driftStr(hg["path"])})
		}
		if ts := driftMap(pm["tcpSocket"]); ts != nil {
			p.probes = append(p.probes, driftProbe{what: k, where: driftFrom(ts, "port") + ": " + ctx, port: driftStr(ts["port"])})
		}
		if ex := driftMap(pm["exec"]); ex != nil {
			p.hooks = append(p.hooks, driftHook{what: k, where: driftFrom(ex, "command") + ": " + ctx, argv: driftStrings(ex["command"])})
		}
	}
	if limits := driftMap(driftGet(cm, "resources", "limits")); limits["memory"] != nil {
		p.memLimit, p.memWhere = driftQuantity(driftStr(limits["memory"])), driftFrom(limits, "memory")+": "+ctx+" limits.memory"
	}
	return p
}

// driftQuantity reads a Kubernetes quantity of bytes (2Gi, 1536Mi, 2G, 2000000000).
func driftQuantity(q string) int64 {
	for i, u := range []string{"Ki", "Mi", "Gi", "Ti"} {
		if n, ok := strings.CutSuffix(q, u); ok {
			return driftSize(n, int64(1)<<(10*(i+1)), "")
		}
	}
	for i, u := range []string{"k", "M", "G", "T"} {
		if n, ok := strings.CutSuffix(q, u); ok {
			mult := int64(1)
			for range i + 1 {
				mult *= 1000
			}
			return driftSize(n, mult, "")
		}
	}
	return driftSize(q, 1, "")
}

// driftServices holds each Service's ports to the listeners of the weft containers it
// selects: a port no process listens on, a port name the container does not declare. A
// PostgreSQL server it selects is reached at its name, on each port that leads to 5432.
func driftServices(docs []driftDoc, pods []driftPod, report driftReport) {
	for _, d := range docs {
		if driftStr(d.m["kind"]) != "Service" {
			continue
		}
		name := driftStr(driftGet(d.m, "metadata", "name"))
		sel := driftMap(driftGet(d.m, "spec", "selector"))
		names, numbers := map[string]bool{}, map[string]bool{}
		for _, pt := range driftList(driftGet(d.m, "spec", "ports")) {
			pm := driftMap(pt)
			pname, port := driftStr(pm["name"]), driftStr(pm["port"])
			where := fmt.Sprintf("%s: Service %s port %s", driftFrom(pm, "port"), name, port)
			if names[pname] || numbers[port] {
				report("%s: a second port named %q or numbered %s", where, pname, port)
			}
			names[pname], numbers[port] = true, true
			target := driftStr(driftOr(pm["targetPort"], port))
			for _, pod := range pods {
				if !driftSelects(sel, pod.labels) {
					continue
				}
				for _, s := range pod.servers {
					s.hosts[name] = true
					if n, err := strconv.Atoi(target); err == nil && n == 5432 || pod.ports[target] == 5432 {
						s.ports[port] = true
					}
				}
				for _, p := range pod.procs {
					if p.inv != nil && p.inv.listen != nil {
						driftCheckProbe(p, p.inv, driftProbe{what: "Service " + name, where: where, port: target}, report)
					}
				}
			}
		}
	}
}

func driftSelects(sel, labels map[string]any) bool {
	n := 0
	for k, v := range sel {
		if strings.HasPrefix(k, "\x00") {
			continue
		}
		if driftStr(labels[k]) != driftStr(v) {
			return false
		}
		n++
	}
	return n > 0
}

var driftComposeOverride = regexp.MustCompile(`^((?:docker-)?compose)\.[^.]+\.ya?ml$`)
