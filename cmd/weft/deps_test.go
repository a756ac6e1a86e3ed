package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestServerLeavesOutTheLoadGenerator keeps the load generator out of the weft binary: it is
// cmd/weft-loadtest's, and with it came gonum/plot and its PDF, SVG and font code (about 9 MB
// of a server that never draws).
func TestServerLeavesOutTheLoadGenerator(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	drawing := regexp.MustCompile(`plot|pdf|font|latex|svgo|freetype`)
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/weft-edge/weft/loadtest" || drawing.MatchString(pkg) {
			t.Errorf("weft depends on %s", pkg)
		}
	}
}
