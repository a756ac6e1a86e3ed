// Package regiontest holds weft's tests of edge regions on a NATS supercluster of leaf nodes
// (issue 19, docs/architecture.md "Regions"): a hub cluster of three nats-server processes in
// JetStream domain "hub" holding the stream of record (three replicas), where the reference
// origin publishes and which it owns; two edge regions, each a leaf node server (a real
// nats-server process) in a domain of its own ("region-a", "region-b") that reaches the hub
// through a simulated WAN link (internal/wan) of 80 ms and 150 ms round trip; in each region a
// mirror of WEFT_EVENTS that the origin keeps (--stream-mirrors), and edges in the test's
// process connected to their region's leaf node, with clients on WebSocket straight to the
// edges. What the clients saw is compared with what the origin published, and what crossed
// each WAN link is counted from its bytes. The package has no code of its own.
//
// proxied_test.go runs the same regions with clustered edges and a proxy per region (falling
// back to the other), clients connecting through their region's proxy: a region whose edges
// are all killed fails over to the other and comes home.
//
// Only NATS crosses the simulated WAN: the edges load team snapshots from the origin over
// plain loopback HTTP, and a proxy routing to the other region's edges reaches them over
// loopback too.
package regiontest
