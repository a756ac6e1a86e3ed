package deploy

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// The compose files as the drift tests read them: each override merged onto compose.yaml, and
// each service a process with its flags, files, secrets and PostgreSQL server.

// driftComposeVariants is each compose file as it runs: an override (compose.<x>.yaml beside a
// compose.yaml, docker-compose.<x>.yml beside a docker-compose.yml) merged onto its base, as
// `docker compose -f compose.yaml -f compose.<x>.yaml` runs it, and never alone (it is no
// stack by itself); every other compose file alone. The merged services carry the file each
// setting came from, so that a problem names the file that holds it. A merged variant is
// named after the override.
func driftComposeVariants(docs []driftDoc) []driftDoc {
	byFile := map[string]driftDoc{}
	for _, d := range docs {
		byFile[d.file] = d
	}
	var out []driftDoc
	for _, d := range docs {
		dir, base := path.Split(d.file)
		var under *driftDoc
		if m := driftComposeOverride.FindStringSubmatch(base); m != nil {
			for _, ext := range []string{".yaml", ".yml"} {
				if b, ok := byFile[dir+m[1]+ext]; ok {
					under = &b
					break
				}
			}
		}
		if under == nil {
			out = append(out, d)
			continue
		}
		merged := map[string]any{}
		for k, v := range under.m {
			merged[k] = v
		}
		for k, v := range d.m {
			if bm, om := driftMap(merged[k]), driftMap(v); bm != nil && om != nil && k != "services" {
				merged[k] = driftComposeMerge(bm, om, d.file)
			} else if k != "services" {
				merged[k] = v
			}
		}
		services := map[string]any{}
		for n, svc := range driftMap(under.m["services"]) {
			services[n] = driftComposeMerge(map[string]any{"\x00file": under.file}, driftMap(svc), under.file)
		}
		for n, svc := range driftMap(d.m["services"]) {
			if b := driftMap(services[n]); b != nil {
				services[n] = driftComposeMerge(b, driftMap(svc), d.file)
			} else {
				services[n] = driftComposeMerge(map[string]any{"\x00file": d.file}, driftMap(svc), d.file)
			}
		}
		merged["services"] = services
		out = append(out, driftDoc{d.file, merged})
	}
	return out
}

// driftComposeMerge merges a service's settings from a later file onto an earlier's, as compose
// does as far as the material uses it: maps merge (environment and depends_on in either of
// their forms), a command, entrypoint or health check test is replaced, other lists (ports,
// secrets, volumes) are joined. Each key set by over is marked with file.
func driftComposeMerge(base, over map[string]any, file string) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, ov := range over {
		if strings.HasPrefix(k, "\x00") {
			continue
		}
		bv := out[k]
		switch k {
		case "environment":
			bv, ov = driftComposeEnv(bv), driftComposeEnv(ov)
		case "depends_on":
			bv, ov = driftDependsOn(bv), driftDependsOn(ov)
		}
		switch bm, om := driftMap(bv), driftMap(ov); {
		case om != nil: // a copy, every key of it marked
			if bm == nil {
				bm = map[string]any{}
			}
			out[k] = driftComposeMerge(bm, om, file)
		case driftList(bv) != nil && driftList(ov) != nil && k != "command" && k != "entrypoint" && k != "test":
			joined, have := append([]any(nil), driftList(bv)...), map[string]bool{}
			for _, e := range joined {
				have[fmt.Sprint(e)] = true
			}
			for _, e := range driftList(ov) {
				if !have[fmt.Sprint(e)] {
					joined = append(joined, e)
				}
			}
			out[k] = joined
		default:
			out[k] = ov
		}
		out["\x00file:"+k] = file
	}
	return out
}

// driftComposeEnv is a service's environment as a map, from either form.
func driftComposeEnv(v any) any {
	l := driftList(v)
	if l == nil {
		return v
	}
	m := map[string]any{}
	for _, kv := range l {
		k, val, ok := strings.Cut(driftStr(kv), "=")
		if ok {
			m[k] = val
		} else {
			m[k] = nil
		}
	}
	return m
}

// driftDependsOn is a service's depends_on as a map, from either form (a list starts each
// service without waiting for more).
func driftDependsOn(v any) map[string]any {
	if m := driftMap(v); m != nil {
		return m
	}
	m := map[string]any{}
	for _, n := range driftList(v) {
		m[driftStr(n)] = map[string]any{"condition": "service_started"}
	}
	return m
}

// driftCompose turns a compose file's services into processes; its second value checks, once
// they are, that no two edges share a node name, and the PostgreSQL clients against the
// servers beside them.
func driftCompose(file string, doc map[string]any, files map[string][]byte, images driftImages, use func(where, image string), report driftReport) ([]*driftProc, func()) {
	dir := path.Dir(file)
	services := driftMap(doc["services"])
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	var procs []*driftProc
	var servers []*driftPGServer
	byService := map[string]*driftProc{}
	for _, n := range names {
		svc := driftMap(services[n])
		// where names the file that set key: an override's, or the file the service is from.
		where := func(key string) string {
			f := file
			if s, ok := svc["\x00file"].(string); ok {
				f = s
			}
			if s, ok := svc["\x00file:"+key].(string); ok {
				f = s
			}
			return fmt.Sprintf("%s: service %s", f, n)
		}
		var st *driftStage
		if b := svc["build"]; b != nil {
			ctx, df, target := driftStr(b), "Dockerfile", ""
			if bm := driftMap(b); bm != nil {
				ctx = driftStr(driftOr(bm["context"], "."))
				df = driftStr(driftOr(bm["dockerfile"], df))
				target = driftStr(bm["target"])
			}
			if st = images.stage(path.Join(dir, ctx, df), target); st == nil {
				report("%s: builds %s (target %q), which is no Dockerfile stage in the material", where("build"), path.Join(dir, ctx, df), target)
			}
		} else {
			st = images.byImage(driftStr(svc["image"]))
			if img := driftStr(svc["image"]); img != "" {
				use(where("image"), img)
			}
		}
		envMap := driftMap(driftComposeEnv(svc["environment"]))
		envKeys := make([]string, 0, len(envMap))
		for k := range envMap {
			if !strings.HasPrefix(k, "\x00") {
				envKeys = append(envKeys, k)
			}
		}
		sort.Strings(envKeys)
		envWhere := func(k string) string {
			f := file
			if s, ok := svc["\x00file"].(string); ok {
				f = s
			}
			if s, ok := envMap["\x00file:"+k].(string); ok {
				f = s
			}
			return fmt.Sprintf("%s: service %s environment", f, n)
		}
		mounted := driftComposeSecrets(svc, doc, dir, files, where("secrets"), report)
		if driftImageName(driftStr(svc["image"])) == "postgres" {
			servers = append(servers, driftComposePostgres(n, svc, envMap, mounted, where, report))
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
		p := &driftProc{platform: "compose", where: where("command"), argv: argv, names: []string{n}, grace: 10 * time.Second,
			graceWhere: where("stop_grace_period") + " (default stop_grace_period)", files: mounted}
		for _, k := range []string{"container_name", "hostname"} {
			if s := driftStr(svc[k]); s != "" {
				p.names = append(p.names, s)
			}
		}
		for _, ef := range driftStrings(svc["env_file"]) {
			data, ok := files[path.Join(dir, ef)]
			if !ok {
				report("%s: env_file %s is not in the material", where("env_file"), ef)
			}
			env, opt := driftEnvFile(path.Join(dir, ef), data)
			p.env, p.optionalEnv = append(p.env, env...), append(p.optionalEnv, opt...)
			p.envFiles = append(p.envFiles, path.Join(dir, ef))
		}
		for _, k := range envKeys {
			p.env = append(p.env, driftEnv{k, driftStr(envMap[k]), envWhere(k), envMap[k] != nil})
		}
		if hc := driftMap(svc["healthcheck"]); hc != nil {
			test := driftStrings(hc["test"])
			if s, ok := hc["test"].(string); ok {
				test = []string{"CMD-SHELL", s}
			}
			if len(test) > 1 && driftStr(hc["disable"]) != "true" {
				p.hooks = append(p.hooks, driftHook{what: "healthcheck", where: where("healthcheck") + " healthcheck", argv: test[1:], shell: test[0] == "CMD-SHELL"})
			}
		} else if st != nil && st.health != nil { // the image's own
			p.hooks = append(p.hooks, driftHook{what: "the image's HEALTHCHECK", where: st.healthWhere + " (in " + where("image") + ")", argv: st.health, shell: st.healthShell})
		}
		mem := driftStr(driftOr(svc["mem_limit"], driftGet(svc, "deploy", "resources", "limits", "memory")))
		if mem != "" {
			p.memLimit, p.memWhere = driftSize(strings.ToUpper(mem), 1, "KMGT"), where("mem_limit")+" memory limit "+mem
		}
		if g := driftStr(svc["stop_grace_period"]); g != "" {
			p.grace, _ = time.ParseDuration(g)
			p.graceWhere = where("stop_grace_period") + " stop_grace_period"
		}
		for _, pt := range driftList(svc["ports"]) {
			target := driftStr(driftGet(pt, "target"))
			if driftMap(pt) == nil {
				parts := strings.Split(strings.TrimSuffix(driftStr(pt), "/tcp"), ":")
				target = parts[len(parts)-1]
			}
			p.probes = append(p.probes, driftProbe{what: "published port", where: where("ports") + " ports", port: target})
		}
		deps := driftDependsOn(svc["depends_on"])
		for dep, how := range deps {
			if !strings.HasPrefix(dep, "\x00") && driftStr(driftGet(how, "condition")) == "service_completed_successfully" {
				p.beforeNames = append(p.beforeNames, dep)
			}
		}
		sort.Strings(p.beforeNames)
		procs = append(procs, p)
		byService[n] = p
	}
	for _, p := range procs {
		for _, n := range p.beforeNames {
			if q := byService[n]; q != nil {
				p.before = append(p.before, q)
			}
		}
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
		driftPostgres(procs, servers, report)
	}
}

// driftComposeSecrets is the files a service's secrets put in it, by path, with the content
// of the files the top-level secrets name.
func driftComposeSecrets(svc, doc map[string]any, dir string, files map[string][]byte, where string, report driftReport) map[string]driftFile {
	out := map[string]driftFile{}
	for _, s := range driftList(svc["secrets"]) {
		src, target := driftStr(s), ""
		if sm := driftMap(s); sm != nil {
			src, target = driftStr(sm["source"]), driftStr(sm["target"])
		}
		if target == "" {
			target = src
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		f := driftStr(driftGet(doc, "secrets", src, "file"))
		if f == "" {
			continue // from the environment, or external: nothing here to read
		}
		data, ok := files[path.Join(dir, f)]
		if !ok {
			report("%s: secret %s is the file %s, which is not in the material", where, src, f)
			continue
		}
		out[target] = driftFile{data, path.Join(dir, f)}
	}
	return out
}

// driftComposePostgres is a compose service running the official postgres image, as clients
// reach it: at its service name, on 5432, with the user, database and password the image
// creates on a first start.
func driftComposePostgres(n string, svc, env map[string]any, files map[string]driftFile, where func(string) string, report driftReport) *driftPGServer {
	s := &driftPGServer{where: where("image"), hosts: map[string]bool{n: true}, ports: map[string]bool{"5432": true}}
	for _, k := range []string{"container_name", "hostname"} {
		if h := driftStr(svc[k]); h != "" {
			s.hosts[h] = true
		}
	}
	s.user = driftStr(driftOr(env["POSTGRES_USER"], "postgres"))
	s.db = driftStr(driftOr(env["POSTGRES_DB"], s.user))
	if env["POSTGRES_PASSWORD"] != nil {
		report("%s: POSTGRES_PASSWORD puts the password in the compose file: give it as a secret's file, POSTGRES_PASSWORD_FILE", where("environment"))
	}
	if pf := driftStr(env["POSTGRES_PASSWORD_FILE"]); pf != "" {
		if f, ok := files[pf]; ok {
			s.password = &f
		}
	}
	return s
}
