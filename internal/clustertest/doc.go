// Package clustertest holds weft's tests and benchmark on a real NATS cluster (issue 18): three
// nats-server processes with JetStream (internal/testkit/natscluster), a WEFT_EVENTS stream with
// three replicas, the reference origin publishing live, two edges and a proxy in the test's
// process, each with its own NATS connection with every server as a seed, and clients through
// the proxy over WebSocket. The servers are killed, stopped and restarted under traffic; what
// the clients saw is compared with what the origin published. The package has no code of its
// own: everything is in its tests.
package clustertest
