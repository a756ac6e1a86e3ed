package loadtest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestMain lets this test binary stand in for the programs the tests start: run with
// rawServerEnv set it is the raw server of baseline_test.go; run as `<test binary>
// storm-worker` it is a client worker (what weft-loadtest is in production), so the capacity
// and storm code under test re-execute this binary for their workers (and as the cheap worker,
// the centrifuge server and the fronts' TCP relay). Otherwise it runs the
// tests and fails them if a client goroutine or an HTTP connection is left behind.
func TestMain(m *testing.M) {
	if mode := os.Getenv(rawServerEnv); mode != "" {
		if err := runRawServer(mode, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "raw server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && (os.Args[1] == CheapWorkerCommand || os.Args[1] == CentrifugeCommand) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		run := RunCheapWorker
		if os.Args[1] == CentrifugeCommand {
			run = RunCentrifugeServer
		}
		err := run(ctx, os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) == 3 && os.Args[1] == RelayCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := RunRelay(ctx, os.Args[2], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "tcp-relay:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == WorkerCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := RunStormWorker(ctx, os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		weft.Remove()
		os.Exit(code)
	}))
}

// weft is the weft binary of this test run, built by the first test that needs one.
var weft = testkit.Built{Build: Build}

// weftBin returns the weft binary of this module, building it the first time.
func weftBin(tb testing.TB) string {
	tb.Helper()
	return weft.Path(tb)
}

// workerBin is the program the capacity and storm workers run: this test binary (see TestMain).
func workerBin(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return exe
}
