package clustertest_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/weft-edge/weft/internal/testkit"
)

// weftBin and weftProxyBin are this module's weft and weft-proxy, built by the first test that
// runs one.
var (
	weftBin      = testkit.Built{Build: goBuild("weft", "github.com/weft-edge/weft/cmd/weft")}
	weftProxyBin = testkit.Built{Build: goBuild("weft-proxy", "github.com/weft-edge/weft/cmd/weft-proxy")}
)

func goBuild(name, pkg string) func(ctx context.Context, dir string) (string, error) {
	return func(ctx context.Context, dir string) (string, error) {
		bin := filepath.Join(dir, name)
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
		return bin, nil
	}
}
