package pubsub

import (
	"strings"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

// TestEmbeddedHubAndLeaf: two embedded servers in one process make a region topology, a hub
// in domain "hub" taking leaf nodes and a leaf node in domain "region-a" connected to it; the
// owner on the hub makes the region's mirror there, and a bus on the leaf node reads it.
func TestEmbeddedHubAndLeaf(t *testing.T) {
	hub := startEmbedded(t, EmbeddedConfig{ServerName: "hub", Domain: "hub", LeafListen: true})
	addr := hub.LeafAddr()
	testkit.True(t, strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasSuffix(addr, ":0"), "leaf addr %q", addr)
	leaf := startEmbedded(t, EmbeddedConfig{ServerName: "leaf-a", Domain: "region-a", NoListen: true,
		LeafRemotes: []string{"nats-leaf://" + addr}})
	testkit.Equal(t, leaf.LeafAddr(), "", "leaf addr of a server without a leaf listener")
	testkit.Eventually(t, func() bool { return hub.LeafConnections() == 1 && leaf.LeafConnections() == 1 }, "the leaf node connected")

	owner := connect(t, Config{Embedded: hub, Name: "origin", Stream: StreamConfig{Mirrors: []string{"region-a"}}})
	publish(t, owner, "T1", 1, 3)
	edge := connectUser(t, Config{Embedded: leaf, Name: "edge", FallbackDomain: "hub"})
	testkit.Equal(t, mirrorOf(edge.stream.CachedInfo().Config), "WEFT_EVENTS via $JS.hub.API", "the leaf node's stream")
	testkit.Eventually(t, func() bool {
		last, err := edge.LastSeq(t.Context(), "T1")
		return err == nil && last == 3
	}, "the mirror holding 3 events")

	hub.Shutdown()
	testkit.Equal(t, hub.LeafConnections(), 0, "leaf connections of a stopped server")
}

// TestEmbeddedRegionConfigErrors: leaf and domain settings that cannot work are refused by
// NewEmbedded, naming what is wrong.
func TestEmbeddedRegionConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  EmbeddedConfig
		want string
	}{
		{EmbeddedConfig{LeafListen: true, LeafPort: 70000}, "leaf port"},
		{EmbeddedConfig{Domain: "a.b"}, "domain"},
		{EmbeddedConfig{LeafRemotes: []string{"127.0.0.1:7422"}}, "leaf remote"},
		{EmbeddedConfig{LeafRemotes: []string{"http://127.0.0.1:7422"}}, "leaf remote"},
	} {
		_, err := NewEmbedded(c.cfg)
		testkit.True(t, err != nil && strings.Contains(err.Error(), c.want), "%+v: %v, want an error about %s", c.cfg, err, c.want)
	}
}
