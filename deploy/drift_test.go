package deploy

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/weft-edge/weft/internal/testkit"
)

// The material in deploy/ cannot be run where weft is developed (no container runtime), so
// these tests check what can drift from the binaries instead: every flag, environment
// variable, port, probe path, hook and memory limit (drift_check_test.go; the files are read
// by drift_sources_test.go and drift_k8s_test.go).

// TestDrift checks every file under deploy/ against `weft <command> -h` and
// `weft-proxy -h` of this module's binaries.
func TestDrift(t *testing.T) {
	h := driftLoadHelp(t)
	problems, procs := driftCheck(h, driftReadTree(t))
	for _, p := range problems {
		t.Error(p)
	}
	// A source that silently stopped understanding its files would pass with nothing to
	// check: each platform must have yielded each server, its hooks and its probes.
	found := map[string]int{}
	for _, p := range procs {
		if p.inv == nil {
			continue
		}
		found[p.platform+" "+p.inv.role]++
		found[p.platform+" hooks"] += len(p.hooks)
		found[p.platform+" probes"] += len(p.probes)
		if _, pg := p.inv.env["postgres"]; p.inv.role == "origin" && (pg || p.inv.args["postgres"] != "") {
			found[p.platform+" postgres origin"]++
		}
	}
	for _, platform := range []string{"k8s", "compose", "systemd"} {
		for _, what := range []string{"edge", "proxy", "origin", "hooks", "postgres origin", "origin migrate"} {
			if found[platform+" "+what] == 0 {
				t.Errorf("no %s found in the %s material: does the checker still read it?", what, platform)
			}
		}
	}
	for _, platform := range []string{"k8s", "compose"} {
		if found[platform+" probes"] == 0 {
			t.Errorf("no probes found in the %s material: does the checker still read it?", platform)
		}
	}
	t.Logf("checked %d processes: %v", len(procs), found)
}

// TestDriftCatches proves the checker on copies of the real material with one thing broken:
// each must be reported, and nothing else.
func TestDriftCatches(t *testing.T) {
	h := driftLoadHelp(t)
	tree := driftReadTree(t)
	for _, c := range []struct {
		name, file, old, new, want string
	}{
		{"a flag renamed in a manifest", "deploy/k8s/base/edge.yaml",
			"--token-secret-file=", "--token-secrets-file=", "weft edge has no flag --token-secrets-file"},
		{"a flag renamed in the compose file", "deploy/compose/compose.yaml",
			"--node=edge-2", "--node-name=edge-2", "weft edge has no flag --node-name"},
		{"a flag renamed in a unit's ExecStop", "deploy/systemd/weft-edge.service",
			"drain --ops-url", "drain --ops-uri", "weft drain has no flag --ops-uri"},
		{"a variable renamed in an env file", "deploy/systemd/weft-edge.env",
			"WEFT_MEMORY_BUDGET=", "WEFT_MEMORY_BUDGT=", "WEFT_MEMORY_BUDGT is not the environment twin of a flag of weft edge"},
		{"a shared variable one process lacks", "deploy/k8s/base/config.yaml",
			"WEFT_LOG_LEVEL: info", "WEFT_REGION: default", "WEFT_REGION is not the environment twin of a flag of weft origin"},
		{"a scrape on the client port", "deploy/k8s/base/edge.yaml",
			`prometheus.io/port: "9090"`, `prometheus.io/port: "8080"`, "asks /metrics, which weft edge does not serve on its client listener"},
		{"a probe of a path the proxy lacks", "deploy/k8s/base/proxy.yaml",
			"path: /readyz", "path: /ready", "readinessProbe asks /ready, which weft-proxy does not serve on its ops listener"},
		{"a health check of a path the origin lacks", "deploy/compose/compose.yaml",
			"http://127.0.0.1:9092/healthz", "http://127.0.0.1:9092/readyz", "asks /readyz, which weft origin does not serve"},
		{"a memory limit below the budget", "deploy/systemd/weft-edge.service",
			"MemoryMax=2G", "MemoryMax=1G", "is not above --memory-budget 1536MiB"},
		{"a grace period shorter than the drain", "deploy/k8s/base/edge.yaml",
			"terminationGracePeriodSeconds: 90", "terminationGracePeriodSeconds: 60", "to stop is not above the drain's --timeout 1m0s"},
		{"an edge on every interface without --advertise", "deploy/compose/compose.yaml",
			"      - --advertise=edge-1:8080\n", "", "without --advertise"},
		{"a Service port the pods do not declare", "deploy/k8s/base/edge.yaml",
			"      targetPort: ops\n", "      targetPort: metrics\n", `Service weft-edge names port "metrics", which the container does not declare`},
		{"a variable referring to one defined after it", "deploy/k8s/base/edge.yaml",
			"value: $(POD_IP):8080", "value: $(POD_ADDR):8080", "WEFT_ADVERTISE refers to $(POD_ADDR), which is not defined before it"},
		{"a credential the unit does not load", "deploy/systemd/weft-proxy.service",
			"LoadCredential=weft-token-secrets:", "LoadCredential=token-secrets:", "names credential weft-token-secrets, which no LoadCredential= loads"},
		{"a flag renamed in a compose override", "deploy/compose/compose.postgres.yaml",
			"--stream-max-bytes=", "--stream-max-byte=", "weft origin has no flag --stream-max-byte"},
		{"a flag of a subcommand renamed", "deploy/compose/compose.postgres.yaml",
			"--size=small", "--world=small", "weft origin seed has no flag --world"},
		{"a password in the database URL", "deploy/systemd/weft-postgres.env",
			"postgres://weft@", "postgres://weft:secret@", "--postgres holds a password"},
		{"a password file without the database's line", "deploy/compose/pgpass.sample",
			"postgres:5432:weft:weft:", "postgres:5432:chat:weft:", "no line matches postgres:5432:weft:weft"},
		{"a password file the server disagrees with", "deploy/k8s/overlays/dev-postgres/postgres-password.sample",
			"weft-dev-sample-password", "another-sample-password", "is not the one the server"},
		{"an origin on PostgreSQL that does not wait for its migration", "deploy/systemd/weft-origin.service.d/postgres.conf",
			"Requires=weft-origin-migrate.service\n", "", "starts with no weft origin migrate of its database"},
		{"a credential a drop-in does not load", "deploy/systemd/weft-origin.service.d/postgres.conf",
			"LoadCredential=weft-pgpass:", "LoadCredential=pgpass:", "names credential weft-pgpass, which no LoadCredential= loads"},
		{"a component's variable the migration lacks", "deploy/k8s/components/postgres-origin/config.yaml",
			"  PGPASSFILE: /etc/weft/postgres/pgpass\n", "  PGPASSFILE: /etc/weft/postgres/pgpass\n  WEFT_OUTBOX_POLL: 1s\n",
			"WEFT_OUTBOX_POLL is not the environment twin of a flag of weft origin migrate"},
		{"an init container on another release", "deploy/k8s/components/postgres-origin/origin.yaml",
			"          image: weft\n", "          image: weft:v0.0.1\n", "a pod's weft containers must run one release"},
		{"an image without a version", "deploy/compose/compose.postgres.yaml",
			"image: postgres:17.9-bookworm", "image: postgres:latest", "image postgres:latest is not pinned to a version"},
		{"an image at two versions", "deploy/k8s/overlays/dev-postgres/postgres.yaml",
			"image: postgres:17.9-bookworm", "image: postgres:17.8-bookworm", "one version of an image everywhere"},
		// A new file: Prometheus scraping an edge of the compose file on its client port.
		{"a new scrape config with a wrong target", "deploy/prometheus/drift-case.yml", "",
			"scrape_configs:\n  - job_name: weft-edge\n    static_configs:\n      - targets: [edge-1:8080]\n",
			"job weft-edge, target edge-1:8080: Prometheus asks /metrics, which weft edge does not serve on its client listener"},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range tree {
				files[k] = v
			}
			switch _, exists := files[c.file]; {
			case c.old == "" && exists:
				t.Fatalf("%s exists: this case adds it", c.file)
			case c.old != "" && strings.Count(string(files[c.file]), c.old) != 1:
				t.Fatalf("%s holds %q %d times, want once: update this case to the material", c.file, c.old, strings.Count(string(files[c.file]), c.old))
			}
			files[c.file] = []byte(strings.Replace(string(files[c.file]), c.old, c.new, 1))
			problems, _ := driftCheck(h, files)
			if len(problems) != 1 || !strings.Contains(problems[0], c.want) {
				t.Fatalf("want exactly one problem saying %q, got %d:\n%s", c.want, len(problems), strings.Join(problems, "\n"))
			}
		})
	}
}

// TestDriftKustomize renders each kustomization with kubectl (or kustomize, which .ci/run
// installs where neither is), and checks what Kubernetes would get: the real merge of the
// overlays' patches where TestDrift merges them itself.
func TestDriftKustomize(t *testing.T) {
	tool, args := "kubectl", []string{"kustomize"}
	if _, err := exec.LookPath(tool); err != nil {
		if tool, args = "kustomize", []string{"build"}; func() bool { _, err := exec.LookPath(tool); return err != nil }() {
			t.Fatal("neither kubectl nor kustomize is installed: .ci/run installs kustomize (go install sigs.k8s.io/kustomize/kustomize/v5)")
		}
	}
	h := driftLoadHelp(t)
	tree := driftReadTree(t)
	// Components are rendered as part of the kustomizations that include them (alone, their
	// patches would have nothing to patch): each must be included by one.
	var dirs []string
	components, included := map[string]bool{}, map[string]bool{}
	for name, data := range tree {
		if path.Base(name) != "kustomization.yaml" {
			continue
		}
		var k struct {
			Kind       string
			Components []string
		}
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range k.Components {
			included[path.Join(path.Dir(name), c)] = true
		}
		if k.Kind == "Component" {
			components[path.Dir(name)] = true
		} else {
			dirs = append(dirs, path.Dir(name))
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatal("no kustomization.yaml under deploy/")
	}
	for c := range components {
		if !included[c] {
			t.Errorf("%s: a component no kustomization includes, so that nothing renders it", c)
		}
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			out, err := exec.Command(tool, append(args, filepath.Join("..", dir))...).Output()
			if err != nil {
				t.Fatalf("%s %s %s: %v", tool, strings.Join(args, " "), dir, err)
			}
			files := map[string][]byte{dir + "/(rendered).yaml": out}
			for name, data := range tree {
				if path.Base(name) == "Dockerfile" {
					files[name] = data
				}
			}
			problems, procs := driftCheck(h, files)
			for _, p := range problems {
				t.Error(p)
			}
			if len(procs) == 0 {
				t.Errorf("%s renders no weft process", dir)
			}
		})
	}
}

// TestDriftServedPaths holds driftServes, the paths the checker accepts on each listener,
// to the handlers the servers register.
func TestDriftServedPaths(t *testing.T) {
	registered := map[string][]string{ // role listener → file and the mux's name there
		"edge client":   {"edge/server.go", "s.mux"},
		"edge ops":      {"edge/server.go", "s.ops"},
		"proxy client":  {"proxy/proxy.go", "s.mux"},
		"proxy ops":     {"proxy/proxy.go", "s.ops"},
		"origin client": {"origin/reference/server.go", "s.mux"},
		"origin ops":    {"cmd/weft/origin.go", "mux"},
	}
	for role, listeners := range driftServes {
		for l, paths := range listeners {
			src, ok := registered[role+" "+l]
			if !ok && len(paths) > 0 {
				t.Fatalf("no source for %s's %s listener", role, l)
			}
			for _, p := range paths {
				file, mux := src[0], src[1]
				if strings.HasPrefix(p, "/debug/pprof/") { // every operator listener's (internal/serve)
					file, mux = "internal/serve/process.go", "mux"
				}
				data, err := os.ReadFile(filepath.Join("..", file))
				if err != nil {
					t.Fatal(err)
				}
				re := regexp.MustCompile(`\b` + regexp.QuoteMeta(mux) + `\.Handle(Func)?\("([A-Z]+ )?` + regexp.QuoteMeta(p) + `"`)
				if !re.Match(data) {
					t.Errorf("%s registers no %s on %s: driftServes says %s serves it on its %s listener", file, p, mux, role, l)
				}
			}
		}
	}
}

// TestDriftSampleSecrets checks that each sample token secrets file is one weft reads: it
// mints a token with it.
func TestDriftSampleSecrets(t *testing.T) {
	weft := weftBin.Path(t)
	n := 0
	for name := range driftReadTree(t) {
		if !strings.HasPrefix(path.Base(name), "token-secrets") {
			continue
		}
		n++
		file := filepath.Join("..", filepath.FromSlash(name))
		if out, err := driftExec(weft, "token", "--token-secret-file", file, "--team", "T1", "--user", "U1"); err != nil {
			t.Errorf("weft token --token-secret-file %s: %v\n%s", name, err, out)
		}
	}
	if n == 0 {
		t.Error("no token-secrets sample under deploy/")
	}
}

// TestDriftNATSConfigs has the nats-server of go.mod test every NATS configuration under
// deploy/ (nats-server -t: parse and check, start nothing).
func TestDriftNATSConfigs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := testkit.GoBuild("nats-server", "github.com/nats-io/nats-server/v2")(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name := range driftReadTree(t) {
		if path.Ext(name) != ".conf" || strings.HasSuffix(path.Dir(name), ".d") { // not systemd's drop-ins
			continue
		}
		n++
		conf, err := filepath.Abs(filepath.Join("..", filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, bin, "-t", "-c", conf)
		cmd.Dir = t.TempDir() // relative store_dirs land here, if anything does
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nats-server -t -c %s: %v\n%s", name, err, out)
		}
	}
	if n == 0 {
		t.Error("no NATS configuration under deploy/")
	}
}

// driftReadTree is every file under deploy/, by its path from the repository root.
func driftReadTree(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		files[path.Join("deploy", filepath.ToSlash(p))] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
