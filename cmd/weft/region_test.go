package main

import (
	"strings"
	"testing"

	"github.com/weft-edge/weft/internal/cli/clitest"
)

// TestEdgeRegionValidated: a bad --region stops the edge before it connects to NATS (the
// --nats given answers nothing), with an error naming the flag.
func TestEdgeRegionValidated(t *testing.T) {
	r := clitest.Run(t, "edge", "--region", "eu west", "--nats", "nats://127.0.0.1:1", "--token-secret", "s3cret-s3cret-s3cret-s3cret-s3cret")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--region") {
		t.Errorf("exit %d, stderr %q; want 2 and an error naming --region", r.Code, r.Stderr)
	}
}
