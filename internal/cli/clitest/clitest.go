// Package clitest runs a command's real main() in a child process, so that a test sees what an
// operator would: the exit status and what went to stdout and to stderr. The child is the test
// binary itself, re-executed with an environment variable that makes TestMain call main.
package clitest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// mainEnv, set in a child's environment, makes Init run main instead of the tests.
const mainEnv = "WEFT_CLITEST_RUN_MAIN"

// Init, called first in TestMain, runs main and exits when this process is a child started by
// Run. main is expected to exit by itself; returning counts as success.
func Init(main func()) {
	if os.Getenv(mainEnv) == "" {
		return
	}
	main()
	os.Exit(0)
}

// Result is what a run of the command showed.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs the command (this test binary, calling main: see Init) with args and the test's
// environment, and waits for it to exit. A child still running after a minute is killed, so
// that a command that unexpectedly starts serving does not outlive the test.
func Run(t testing.TB, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) || ctx.Err() != nil {
		t.Fatalf("%q: %v (%v)\nstdout: %s\nstderr: %s", args, err, ctx.Err(), stdout.String(), stderr.String())
	}
	return Result{Code: cmd.ProcessState.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}
}
