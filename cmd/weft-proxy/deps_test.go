package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProxyLeavesOutTheEdge keeps weft-proxy a proxy: none of the edge's cache and search
// (bleve), the embedded NATS server, the event bus that links it, or the reference origin.
// Each of these is megabytes and packages a proxy host would carry and never run.
func TestProxyLeavesOutTheEdge(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const weft = "github.com/weft-edge/weft/"
	banned := []string{weft + "cache", weft + "index", weft + "edge", weft + "pubsub", weft + "origin/reference"}
	pkgs := strings.Fields(string(out))
	for _, pkg := range pkgs {
		if strings.Contains(pkg, "bleve") || strings.Contains(pkg, "nats-server") {
			t.Errorf("weft-proxy depends on %s", pkg)
		}
		for _, b := range banned {
			if pkg == b || strings.HasPrefix(pkg, b+"/") {
				t.Errorf("weft-proxy depends on %s", pkg)
			}
		}
	}
	// The check above is only worth something if the list is the proxy's.
	if !contains(pkgs, weft+"proxy") || !contains(pkgs, "github.com/nats-io/nats.go") {
		t.Fatalf("go list -deps has neither the proxy nor the NATS client: %d packages", len(pkgs))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
