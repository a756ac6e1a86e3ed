package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/cli/clitest"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/pubsub"
)

func TestMain(m *testing.M) {
	clitest.Init(main) // a child of clitest.Run: be the command, not the tests
	testkit.VerifyTestMain(m)
}

// TestHelpExitsZero: the help asked for, of weft or of any command, with -h or --help, goes
// to stdout and exits 0, listing the command's flags with their environment twins.
func TestHelpExitsZero(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		r := clitest.Run(t, arg)
		if r.Code != 0 || !strings.Contains(r.Stdout, "usage: weft <command>") || r.Stderr != "" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", arg, r.Code, r.Stdout, r.Stderr)
		}
	}
	for _, c := range commands {
		for _, arg := range []string{"-h", "--help"} {
			r := clitest.Run(t, c.name, arg)
			if r.Code != 0 || !strings.Contains(r.Stdout, "usage: weft "+c.name+" [flags]") ||
				!strings.Contains(r.Stdout, " [WEFT_") && c.name != "version" || r.Stderr != "" { // version has no flags
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", c.name, arg, r.Code, r.Stdout, r.Stderr)
			}
		}
	}
}

// TestBadUsageExitsTwo: bad usage exits 2, with the error on stderr and nothing on stdout.
func TestBadUsageExitsTwo(t *testing.T) {
	clearTokenEnv(t) // `weft token` without --team is bad usage only while WEFT_TEAM is unset
	for _, args := range [][]string{{"nosuch"}, {"edge", "--nosuchflag"}, {"proxy", "extra"}, {"origin", "--rate", "fast"}, {"token"}} {
		r := clitest.Run(t, args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "weft: ") || r.Stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// TestStreamFlagsValidated: the stream owner's flags are checked before any connection to NATS
// (the --nats given answers nothing: a command that connected first would retry until killed)
// and the error names the flag, also when the value comes from its environment twin.
func TestStreamFlagsValidated(t *testing.T) {
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"origin", "--stream-replicas", "6"}, "--stream-replicas"},
		{[]string{"origin", "--stream-replicas", "0"}, "--stream-replicas"},
		{[]string{"origin", "--stream-max-age", "-1h"}, "--stream-max-age"},
		{[]string{"origin", "--stream-duplicate-window", "0s"}, "--stream-duplicate-window"},
		{[]string{"origin", "--stream-max-per-subject", "0"}, "--stream-max-per-subject"},
		{[]string{"origin", "--stream-max-bytes", "lots"}, "--stream-max-bytes"},
		{[]string{"dev", "--stream-replicas", "9"}, "--stream-replicas"},
		{[]string{"origin", "--stream-mirrors", "region.a"}, "--stream-mirrors"},
		{[]string{"origin", "--stream-mirrors", "a,b,a"}, "--stream-mirrors"},
		{[]string{"origin", "--stream-mirror-replicas", "0"}, "--stream-mirror-replicas"},
	}
	for _, c := range cases {
		r := clitest.Run(t, append(c.args, "--nats", "nats://127.0.0.1:1")...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.flag) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and an error naming %s", c.args, r.Code, r.Stderr, c.flag)
		}
	}
	t.Setenv("WEFT_STREAM_REPLICAS", "7")
	r := clitest.Run(t, "origin", "--nats", "nats://127.0.0.1:1")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--stream-replicas") {
		t.Errorf("WEFT_STREAM_REPLICAS=7: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestNATSDomainNeedsNATS: --nats-domain names a domain of an external NATS; with the embedded
// server, which has none, the command stops at once saying so.
func TestNATSDomainNeedsNATS(t *testing.T) {
	for _, args := range [][]string{
		{"edge", "--embedded-nats", "--nats-addr", "127.0.0.1:0", "--nats-domain", "region-a", "--token-secret", "0123456789abcdef0123"},
		{"origin", "--nats-addr", "127.0.0.1:0", "--nats-domain", "hub"},
		{"edge", "--embedded-nats", "--nats-addr", "127.0.0.1:0", "--nats-fallback-domain", "hub", "--token-secret", "0123456789abcdef0123"},
	} {
		r := clitest.Run(t, args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "need --nats") {
			t.Errorf("%q: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
	}
}

// TestEdgeWithoutStreamFails: an edge only uses the stream; on a NATS without it, it stops at
// once with an error naming the stream and the command that creates it, and does not create it.
func TestEdgeWithoutStreamFails(t *testing.T) {
	emb := backend.ListeningNATS(t)
	r := clitest.Run(t, "edge", "--addr", "127.0.0.1:0", "--nats", emb.ClientURL(), "--token-secret", "s3cret-s3cret-s3cret-s3cret-s3cret",
		"--log-level", "error")
	if r.Code != 2 || !strings.Contains(r.Stderr, pubsub.StreamName) || !strings.Contains(r.Stderr, "weft origin") {
		t.Errorf("edge without stream: exit %d, stderr %q", r.Code, r.Stderr)
	}
	js, err := jetstream.New(backend.Conn(t, emb))
	testkit.OK(t, err)
	_, err = js.Stream(context.Background(), pubsub.StreamName)
	testkit.True(t, errors.Is(err, jetstream.ErrStreamNotFound), "edge created the stream (lookup: %v)", err)
}
