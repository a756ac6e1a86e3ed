package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Built is a file a test binary builds at most once, for the first test that needs it (a
// program under test, for example), so that tests that need none, and -run filters, pay
// nothing for it. It lives in a temporary directory that Remove deletes: call it from
// TestMain once the tests have run.
type Built struct {
	// Build makes the file in dir and returns its path. Required.
	Build func(ctx context.Context, dir string) (string, error)

	once sync.Once
	dir  string
	path string
	err  error
}

// buildTimeout bounds one build: a cold `go build` of a server on a busy 2-core machine.
const buildTimeout = 5 * time.Minute

// Path returns the built file, building it on the first call; a failed build fails t (and
// every later caller, with the same error).
func (b *Built) Path(t T) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "weft-test-build-"); b.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		b.path, b.err = b.Build(ctx, b.dir)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Remove deletes what was built, if anything was.
func (b *Built) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// GoBuild is a Build that builds the Go package pkg (an import path) as name in dir.
func GoBuild(name, pkg string) func(ctx context.Context, dir string) (string, error) {
	return func(ctx context.Context, dir string) (string, error) {
		bin := filepath.Join(dir, name)
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
		return bin, nil
	}
}
