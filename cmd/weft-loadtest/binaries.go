package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// weftFlag adds --weft, the weft binary the stacks run (see findWeft).
func weftFlag(fs *flag.FlagSet) *string {
	return fs.String("weft", "", "the weft binary the stacks run (weft dev, origin, edges, proxies); empty: the weft next to this executable, else weft on PATH")
}

// buildHint says how to get a weft binary where findWeft looks for one.
const buildHint = "build one with `go build -o bin/ ./cmd/...` (bin/weft beside bin/weft-loadtest) or pass --weft PATH (WEFT_BIN)"

// findWeft returns the weft binary to run: given (--weft) when set, else the weft in the
// directory of self (this executable: `go build -o bin/ ./cmd/...` puts the two side by side),
// else weft on PATH. It never falls back to self: weft-loadtest is not a server.
func findWeft(given, self string) (string, error) {
	if given != "" {
		p, err := exec.LookPath(given) // a path is checked as is; a bare name is looked up on PATH
		if err != nil {
			return "", fmt.Errorf("--weft %s: %w; %s", given, err, buildHint)
		}
		return filepath.Abs(p)
	}
	if self != "" {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			if p, err := exec.LookPath(filepath.Join(filepath.Dir(real), "weft")); err == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("weft"); err == nil {
		return filepath.Abs(p)
	}
	where := "none on PATH"
	if self != "" {
		where = fmt.Sprintf("none in %s and none on PATH", filepath.Dir(self))
	}
	return "", fmt.Errorf("no weft binary to run (%s): %s", where, buildHint)
}

// weftBinary resolves --weft for this process (see findWeft).
func weftBinary(given string) (string, error) {
	self, _ := os.Executable() // "" if unknown: then only --weft and PATH count
	return findWeft(given, self)
}

// workerBinary is the program the client workers of storm and capacity run: this one, as
// `weft-loadtest storm-worker`.
func workerBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this executable for the client workers: %w", err)
	}
	return exe, nil
}
