package regiontest_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/pubsub"
)

// TestDeployConfigs: the example configs of deploy/nats/ are what the docs say they are: a hub
// server in domain hub taking leaf nodes without advertising, a leaf node in domain region-a
// with a remote, and a regional stream that mirrors the hub's through its domain, with direct
// gets.
func TestDeployConfigs(t *testing.T) {
	hub, err := server.ProcessConfigFile("../../deploy/nats/hub.conf")
	testkit.OK(t, err)
	testkit.Equal(t, hub.JetStreamDomain, "hub", "hub's domain")
	testkit.True(t, hub.LeafNode.Port != 0 && hub.LeafNode.NoAdvertise, "hub takes leaf nodes without advertising: %+v", hub.LeafNode)

	leaf, err := server.ProcessConfigFile("../../deploy/nats/leaf-region-a.conf")
	testkit.OK(t, err)
	testkit.Equal(t, leaf.JetStreamDomain, "region-a", "leaf's domain")
	testkit.Equal(t, len(leaf.LeafNode.Remotes), 1, "leaf's remotes")

	data, err := os.ReadFile("../../deploy/nats/regional-stream.json")
	testkit.OK(t, err)
	var cfg jetstream.StreamConfig
	testkit.OK(t, json.Unmarshal(data, &cfg))
	testkit.Equal(t, cfg.Name, pubsub.StreamName, "regional stream's name")
	testkit.True(t, cfg.AllowDirect, "regional stream allows direct gets")
	testkit.True(t, cfg.Mirror != nil && cfg.Mirror.Name == pubsub.StreamName && cfg.Mirror.External != nil &&
		cfg.Mirror.External.APIPrefix == "$JS.hub.API", "regional stream mirrors the hub's: %+v", cfg.Mirror)
}
