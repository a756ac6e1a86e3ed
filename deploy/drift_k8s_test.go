package deploy

import (
	"fmt"
	"path"
	"regexp"
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
// replace" replaces), every other value is replaced.
func driftMerge(base, patch map[string]any, file string) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, pv := range patch {
		if strings.HasPrefix(k, "\x00") {
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
	replace := false
	for _, e := range patch {
		if driftStr(driftGet(e, "$patch")) == "replace" {
			replace = true
		} else {
			kept = append(kept, e)
		}
	}
	if replace {
		return kept, true
	}
	merged := append([]any(nil), base...)
	for _, pe := range patch {
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

// driftKubernetes turns manifests into processes: the base as written, and each overlay's
// patches applied to it. Its second value checks the Services once the processes are.
func driftKubernetes(objs, kusts []driftDoc, images driftImages, report driftReport) ([]*driftProc, func()) {
	patchOf := map[string]string{} // patch file → its overlay
	for _, k := range kusts {
		dir := path.Dir(k.file)
		for _, p := range driftList(k.m["patches"]) {
			if f := driftStr(driftGet(p, "path")); f != "" {
				patchOf[path.Join(dir, f)] = dir
			}
		}
		for _, f := range driftList(k.m["patchesStrategicMerge"]) {
			patchOf[path.Join(dir, driftStr(f))] = dir
		}
	}
	var base []driftDoc
	patches := map[string][]driftDoc{}
	for _, o := range objs {
		if dir, ok := patchOf[o.file]; ok {
			patches[dir] = append(patches[dir], o)
		} else {
			base = append(base, o)
		}
	}
	variants := [][]driftDoc{base}
	overlays := make([]string, 0, len(patches))
	for dir := range patches {
		overlays = append(overlays, dir)
	}
	sort.Strings(overlays)
	for _, dir := range overlays {
		v := append([]driftDoc(nil), base...)
		for _, p := range patches[dir] {
			found := false
			for i, o := range v {
				if driftStr(o.m["kind"]) == driftStr(p.m["kind"]) && driftStr(driftGet(o.m, "metadata", "name")) == driftStr(driftGet(p.m, "metadata", "name")) {
					v[i], found = driftDoc{o.file, driftMerge(o.m, p.m, p.file)}, true
				}
			}
			if !found {
				report("%s: patches %s %s, which no manifest defines", p.file, driftStr(p.m["kind"]), driftStr(driftGet(p.m, "metadata", "name")))
			}
		}
		variants = append(variants, v)
	}
	var procs []*driftProc
	var checks []func()
	for _, v := range variants {
		ps, check := driftK8sVariant(v, images, report)
		procs, checks = append(procs, ps...), append(checks, check)
	}
	return procs, func() {
		for _, c := range checks {
			c()
		}
	}
}

type driftPod struct {
	labels map[string]any
	procs  []*driftProc
}

func driftK8sVariant(docs []driftDoc, images driftImages, report driftReport) ([]*driftProc, func()) {
	configMaps := map[string]driftDoc{}
	for _, d := range docs {
		if driftStr(d.m["kind"]) == "ConfigMap" {
			configMaps[driftStr(driftGet(d.m, "metadata", "name"))] = d
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
		pod := driftPod{labels: driftMap(driftGet(tmpl, "metadata", "labels"))}
		for _, c := range append(driftList(spec["initContainers"]), driftList(spec["containers"])...) {
			cm := driftMap(c)
			ctx := fmt.Sprintf("%s %s, container %s", kind, name, driftStr(cm["name"]))
			p := driftContainer(cm, ctx, configMaps, images, report)
			if p == nil {
				continue
			}
			p.grace, p.graceWhere = grace, graceWhere
			if ann := driftMap(driftGet(tmpl, "metadata", "annotations")); driftStr(ann["prometheus.io/scrape"]) == "true" && len(pod.procs) == 0 {
				p.probes = append(p.probes, driftProbe{what: "prometheus.io annotations", where: driftFrom(ann, "prometheus.io/port") + ": " + ctx,
					port: driftStr(ann["prometheus.io/port"]), path: driftStr(driftOr(ann["prometheus.io/path"], "/metrics"))})
			}
			pod.procs = append(pod.procs, p)
			procs = append(procs, p)
		}
		pods = append(pods, pod)
	}
	return procs, func() { driftServices(docs, pods, report) }
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
				p.env = append(p.env, driftEnv{k, driftStr(data[k]), cmap.file + ": ConfigMap " + driftStr(ref["name"]), true})
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
// selects: a port no process listens on, a port name the container does not declare.
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

// driftCompose turns a compose file's services into processes; its second value checks,
// once they are, that no two edges share a node name.
func driftCompose(file string, doc map[string]any, files map[string][]byte, images driftImages, report driftReport) ([]*driftProc, func()) {
	dir := path.Dir(file)
	services := driftMap(doc["services"])
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	var procs []*driftProc
	for _, n := range names {
		svc := driftMap(services[n])
		where := fmt.Sprintf("%s: service %s", file, n)
		var st *driftStage
		if b := svc["build"]; b != nil {
			ctx, df, target := driftStr(b), "Dockerfile", ""
			if bm := driftMap(b); bm != nil {
				ctx = driftStr(driftOr(bm["context"], "."))
				df = driftStr(driftOr(bm["dockerfile"], df))
				target = driftStr(bm["target"])
			}
			if st = images.stage(path.Join(dir, ctx, df), target); st == nil {
				report("%s: builds %s (target %q), which is no Dockerfile stage in the material", where, path.Join(dir, ctx, df), target)
			}
		} else {
			st = images.byImage(driftStr(svc["image"]))
		}
		argv := driftStrings(svc["command"])
		if ep, has := svc["entrypoint"]; has {
			argv = append(driftStrings(ep), argv...)
		} else if st != nil {
			if _, has := svc["command"]; !has {
				argv = st.cmd
			}
			argv = append(append([]string(nil), st.entrypoint...), argv...)
		}
		if len(argv) == 0 || !driftIsWeft(argv[0]) {
			continue
		}
		p := &driftProc{platform: "compose", where: where, argv: argv, names: []string{n}, grace: 10 * time.Second, graceWhere: where + " (default stop_grace_period)"}
		for _, k := range []string{"container_name", "hostname"} {
			if s := driftStr(svc[k]); s != "" {
				p.names = append(p.names, s)
			}
		}
		for _, ef := range driftStrings(svc["env_file"]) {
			data, ok := files[path.Join(dir, ef)]
			if !ok {
				report("%s: env_file %s is not in the material", where, ef)
			}
			env, opt := driftEnvFile(path.Join(dir, ef), data)
			p.env, p.optionalEnv = append(p.env, env...), append(p.optionalEnv, opt...)
			p.envFiles = append(p.envFiles, path.Join(dir, ef))
		}
		envMap := driftMap(svc["environment"])
		keys := make([]string, 0, len(envMap))
		for k := range envMap {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p.env = append(p.env, driftEnv{k, driftStr(envMap[k]), where + " environment", envMap[k] != nil})
		}
		for _, kv := range driftList(svc["environment"]) {
			k, v, ok := strings.Cut(driftStr(kv), "=")
			p.env = append(p.env, driftEnv{k, v, where + " environment", ok})
		}
		if hc := driftMap(svc["healthcheck"]); hc != nil {
			test := driftStrings(hc["test"])
			if s, ok := hc["test"].(string); ok {
				test = []string{"CMD-SHELL", s}
			}
			if len(test) > 1 && driftStr(hc["disable"]) != "true" {
				p.hooks = append(p.hooks, driftHook{what: "healthcheck", where: where + " healthcheck", argv: test[1:], shell: test[0] == "CMD-SHELL"})
			}
		} else if st != nil && st.health != nil { // the image's own
			p.hooks = append(p.hooks, driftHook{what: "the image's HEALTHCHECK", where: st.healthWhere + " (in " + where + ")", argv: st.health, shell: st.healthShell})
		}
		mem := driftStr(driftOr(svc["mem_limit"], driftGet(svc, "deploy", "resources", "limits", "memory")))
		if mem != "" {
			p.memLimit, p.memWhere = driftSize(strings.ToUpper(mem), 1, "KMGT"), where+" memory limit "+mem
		}
		if g := driftStr(svc["stop_grace_period"]); g != "" {
			p.grace, _ = time.ParseDuration(g)
			p.graceWhere = where + " stop_grace_period"
		}
		for _, pt := range driftList(svc["ports"]) {
			target := driftStr(driftGet(pt, "target"))
			if driftMap(pt) == nil {
				parts := strings.Split(strings.TrimSuffix(driftStr(pt), "/tcp"), ":")
				target = parts[len(parts)-1]
			}
			p.probes = append(p.probes, driftProbe{what: "published port", where: where + " ports", port: target})
		}
		procs = append(procs, p)
	}
	return procs, func() {
		nodes := map[string]string{}
		for _, p := range procs {
			if p.inv == nil || p.inv.role != "edge" {
				continue
			}
			if node, _ := p.inv.get("node"); nodes[node] != "" {
				report("%s: --node %s is also %s's: node names must be unique in the ring", p.where, node, nodes[node])
			} else {
				nodes[node] = p.names[0]
			}
		}
	}
}
