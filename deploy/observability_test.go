package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/weft-edge/weft/internal/testkit"
)

// The observability material checked against the real thing: promtool on the alert rules and
// their unit tests, and a real Prometheus, loaded with alerts.yml, scraping a running weft
// stack (the reference origin with its NATS, two origins on PostgreSQL, two edges, a proxy
// serving TLS) that real clients use, asked every query of every panel of the Grafana
// dashboard and for every series an alert rule reads. Grafana itself is not run: what could
// drift is the queries, and Prometheus answers them.

const (
	obsAlerts     = "prometheus/alerts.yml"
	obsAlertTests = "prometheus/alerts_test.yml"
	obsPromConfig = "prometheus/prometheus.yml"
	obsDashJSON   = "grafana/weft.json"
	obsRunbooks   = "https://github.com/weft-edge/weft/blob/main/docs/operations.md#"
	obsSecret     = "weft-observability-test-secret" // loopback only
	// obsWithin bounds each start and each wait on the stack or Prometheus: a cold start on a
	// busy 2-core machine with the race detector on the test binary.
	obsWithin = 30 * time.Second
)

// obsTool is the path of a program CI installs (.ci/run: Debian's prometheus package); a
// machine without it fails the test rather than skipping what CI must run.
func obsTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s: %v: install Debian's prometheus package (.ci/run does)", name, err)
	}
	return p
}

// obsRule is an alerting rule of alerts.yml.
type obsRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func obsRules(t *testing.T) []obsRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []obsRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	obsYAML(t, obsAlerts, &f)
	var rules []obsRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	testkit.True(t, len(rules) > 0, "%s: no rules", obsAlerts)
	return rules
}

func obsYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	testkit.OK(t, err)
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestObservabilityRules runs promtool on the rules, their unit tests and the compose
// Prometheus config, and holds every alert to the conventions on-call relies on: a severity,
// the three annotations and the runbook link, and a firing and a quiet case in alerts_test.yml.
func TestObservabilityRules(t *testing.T) {
	promtool := obsTool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", obsAlerts}, {"test", "rules", obsAlertTests}, {"check", "config", obsPromConfig}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var tests struct {
		Tests []struct {
			Cases []struct {
				Alert string `yaml:"alertname"`
				Exp   []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	obsYAML(t, obsAlertTests, &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, c := range tc.Cases {
			if len(c.Exp) > 0 {
				fires[c.Alert] = true
			} else {
				quiet[c.Alert] = true
			}
		}
	}
	b, err := os.ReadFile(obsOperations)
	testkit.OK(t, err)
	docs := string(b)
	for _, r := range obsRules(t) {
		if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: want a summary and a description", r.Alert)
		}
		if rb := r.Annotations["runbook"]; !strings.Contains(rb, "Means:") || !strings.Contains(rb, "Check first:") || !strings.Contains(rb, "Do:") {
			t.Errorf("%s: the runbook must say what it means, what to check first and what to do", r.Alert)
		}
		if want := obsRunbooks + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		obsRunbookInDocs(t, docs, r)
		if !fires[r.Alert] || !quiet[r.Alert] {
			t.Errorf("%s: %s needs a case where it fires (%v) and one where it stays quiet (%v)", r.Alert, obsAlertTests, fires[r.Alert], quiet[r.Alert])
		}
	}
}

// obsOperations is the operator's guide, whose "Alerts and what to do" has a section per alert.
const obsOperations = "../docs/operations.md"

// obsRunbookInDocs checks that the guide has a section for r, the runbook_url's anchor, saying
// what the runbook annotation says: each of its paragraphs, whitespace and emphasis aside, so
// that the page on-call opens and the alert's own text never disagree.
func obsRunbookInDocs(t *testing.T, docs string, r obsRule) {
	t.Helper()
	_, section, ok := strings.Cut(docs, "\n### "+r.Alert+"\n")
	if !ok {
		t.Errorf("%s: %s has no section \"### %s\" (the runbook_url's anchor)", r.Alert, obsOperations, r.Alert)
		return
	}
	section, _, _ = strings.Cut(section, "\n#")
	norm := func(s string) string { return strings.Join(strings.Fields(strings.ReplaceAll(s, "**", "")), " ") }
	section = norm(section)
	for _, para := range strings.Split(r.Annotations["runbook"], "\n") {
		if para = norm(para); para != "" && !strings.Contains(section, para) {
			t.Errorf("%s: its section of %s does not say what its runbook says: %q", r.Alert, obsOperations, para)
		}
	}
}

// obsPanel is a dashboard panel as far as the tests read it.
type obsPanel struct {
	Type, Title string
	Datasource  struct{ UID string }
	Targets     []struct {
		Expr       string
		Datasource struct{ UID string }
	}
	Panels []obsPanel // a collapsed row's
}

type obsDash struct {
	SchemaVersion int
	Panels        []obsPanel
	Templating    struct {
		List []struct {
			Name, Type, AllValue string
			Query                json.RawMessage // {"query": "label_values(…)"} for a query
		}
	}
}

// obsQuery is one query of the dashboard: a panel's target, or a variable's label_values.
type obsQuery struct{ where, expr string }

// obsDashboard reads weft.json, checks what Grafana needs of it without running Grafana (data
// sources, variables), and returns its queries with the variables substituted as an operator
// who picked "All" would see them.
func obsDashboard(t *testing.T) []obsQuery {
	t.Helper()
	b, err := os.ReadFile(obsDashJSON)
	testkit.OK(t, err)
	var d obsDash
	testkit.OK(t, json.Unmarshal(b, &d))
	testkit.True(t, d.SchemaVersion >= 36, "schemaVersion %d: data sources by uid need 36 or later", d.SchemaVersion)
	vars := map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
	for _, v := range d.Templating.List {
		vars[v.Name] = map[string]string{"datasource": "${datasource}", "query": ".*"}[v.Type]
		testkit.True(t, v.Type != "query" || v.AllValue == ".*", "variable %s: allValue %q, want .*", v.Name, v.AllValue)
	}
	testkit.Equal(t, vars["datasource"], "${datasource}", "the datasource variable")
	exact := regexp.MustCompile(`\w+\s*(=|!=)\s*"\$\{?(job|instance|region)`) // All is .*: =~ only
	ref := regexp.MustCompile(`\$\{?(\w+)\}?`)
	var qs []obsQuery
	add := func(where, expr string) {
		if m := exact.FindString(expr); m != "" {
			t.Errorf("%s: %q matches a variable exactly; All is .*, so use =~", where, m)
		}
		qs = append(qs, obsQuery{where, ref.ReplaceAllStringFunc(expr, func(r string) string {
			v, ok := vars[ref.FindStringSubmatch(r)[1]]
			testkit.True(t, ok && v != "${datasource}", "%s: unknown variable %s", where, r)
			return v
		})})
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		var q struct{ Query string }
		if v.Type == "query" {
			testkit.OK(t, json.Unmarshal(v.Query, &q))
			m := labelValues.FindStringSubmatch(q.Query)
			testkit.True(t, m != nil, "variable %s: want label_values(selector, label), got %q", v.Name, q.Query)
			add("variable "+v.Name, m[1]+"\x00"+m[2])
		}
	}
	var walk func([]obsPanel)
	walk = func(ps []obsPanel) {
		for _, p := range ps {
			walk(p.Panels)
			where := fmt.Sprintf("panel %q", p.Title)
			testkit.True(t, p.Type == "row" || len(p.Targets) > 0 && p.Datasource.UID == "${datasource}",
				"%s: want queries, and ${datasource} as its data source", where)
			for i, tg := range p.Targets {
				testkit.Equal(t, tg.Datasource.UID, "${datasource}", fmt.Sprintf("%s, query %c's data source", where, 'A'+i))
				add(fmt.Sprintf("%s, query %c", where, 'A'+i), tg.Expr)
			}
		}
	}
	walk(d.Panels)
	return qs
}

// TestObservabilityDashboard checks the dashboard without a stack (data sources, variables).
func TestObservabilityDashboard(t *testing.T) { obsDashboard(t) }
