// Package js holds weft's JavaScript client (src/, an ES module with type declarations). It
// has no Go code: this test runs the client's own tests (node --test, test/) against a real
// weft dev, so that `go test ./...`, what CI runs, covers the JavaScript too.
package js

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

var weftBin = testkit.Built{Build: testkit.GoBuild("weft", "github.com/weft-edge/weft/cmd/weft")}

func TestMain(m *testing.M) {
	code := m.Run()
	weftBin.Remove()
	os.Exit(code)
}

// TestNodeClient type-checks the declarations (`npm run typecheck`: tsc over src/client.d.ts
// and test/types-check.ts, installing the pinned TypeScript from package-lock.json first when
// node_modules lacks it), then runs `npm test` (node --test over test/*.test.js) with WEFT_BIN
// set to this module's weft; each test file starts the weft dev it needs. Node is on every
// machine CI runs on; a machine without it fails here rather than skipping the client's tests.
func TestNodeClient(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm: %v: the JavaScript client's tests need Node.js and npm", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join("node_modules", ".bin", "tsc")); err != nil {
		if out, err := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund").CombinedOutput(); err != nil {
			t.Fatalf("npm ci (for tsc): %v\n%s", err, out)
		}
	}
	if out, err := exec.CommandContext(ctx, npm, "run", "typecheck", "--silent").CombinedOutput(); err != nil {
		t.Fatalf("npm run typecheck: %v\n%s", err, out)
	}
	bin := weftBin.Path(t)
	cmd := exec.CommandContext(ctx, npm, "test", "--silent")
	cmd.Env = append(os.Environ(), "WEFT_BIN="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm test: %v\n%s", err, out)
	}
	t.Logf("npm test:\n%s", out)
}
