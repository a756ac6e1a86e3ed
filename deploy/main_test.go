// Package deploy holds weft's deployment material (container recipe, compose file, Kubernetes
// manifests, systemd units, Prometheus rules, Grafana dashboard). It has no Go code of its
// own: its tests check that the material agrees with the binaries it deploys, since none of
// it can be run on a machine without containers.
package deploy

import (
	"os"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

// weftBin and weftProxyBin are this module's weft and weft-proxy, built by the first test that
// needs one.
var (
	weftBin      = testkit.Built{Build: testkit.GoBuild("weft", "github.com/weft-edge/weft/cmd/weft")}
	weftProxyBin = testkit.Built{Build: testkit.GoBuild("weft-proxy", "github.com/weft-edge/weft/cmd/weft-proxy")}
)

func TestMain(m *testing.M) {
	code := m.Run()
	weftBin.Remove()
	weftProxyBin.Remove()
	os.Exit(code)
}
