// Package ring maps teams to edge nodes: a consistent hash with bounded loads
// (github.com/buraksezer/consistent) over the live edge set, and the live set itself, kept from
// the edges' announcements. The proxy routes by it and every edge checks ownership by it; both
// build the same Ring from the same set, so they agree on every owner.
//
// announce.go holds the announcement itself and how it travels (core NATS, through the NATS
// client only): a proxy links neither package pubsub nor the NATS server to hear the edges.
package ring

import (
	"slices"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Ring parameters. Every node must use the same ones, or owners disagree. 4,093 partitions
// (prime) make a team's move granularity 0.025% of the key space; 256 virtual nodes per edge
// keep partition shares even; the 1.25 bound caps any edge at 1.25x the mean partition load.
// Fewer of either was measured to move up to 1.6x the ideal share on a change of 50 edges
// (BenchmarkRingMoves reports what these give).
const (
	Partitions  = 4093
	Replication = 256
	LoadBound   = 1.25
)

// hasher is xxhash: fast, well distributed, and the same in every process (maphash is seeded
// per process, so two proxies would disagree).
type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

type member string

func (m member) String() string { return string(m) }

// Ring is an immutable assignment of teams to nodes. Owner takes no lock: the partition table
// is computed once when the Ring is built, and a new Ring replaces it on every change.
type Ring struct {
	nodes  []string // sorted
	owners []string // partition → node
	key    string   // nodes joined: equal keys mean equal rings
}

// New builds the ring of nodes (any order; duplicates ignored). An empty set gives a ring
// whose Owner is "".
func New(nodes []string) *Ring {
	ns := slices.Clone(nodes)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	r := &Ring{nodes: ns, key: strings.Join(ns, ",")}
	if len(ns) == 0 {
		return r
	}
	ms := make([]consistent.Member, len(ns))
	for i, n := range ns {
		ms[i] = member(n)
	}
	c := consistent.New(ms, consistent.Config{Hasher: hasher{}, PartitionCount: Partitions,
		ReplicationFactor: Replication, Load: LoadBound})
	r.owners = make([]string, Partitions)
	for p := range r.owners {
		r.owners[p] = c.GetPartitionOwner(p).String()
	}
	return r
}

// Owner is the node that owns team, or "" when the ring is empty. It is the partition
// consistent.LocateKey would pick, read from the precomputed table.
func (r *Ring) Owner(team string) string {
	if len(r.owners) == 0 {
		return ""
	}
	return r.owners[xxhash.Sum64String(team)%uint64(len(r.owners))]
}

// Nodes lists the ring's nodes, sorted. The slice must not be modified.
func (r *Ring) Nodes() []string { return r.nodes }

// Has reports whether node is in the ring.
func (r *Ring) Has(node string) bool {
	_, ok := slices.BinarySearch(r.nodes, node)
	return ok
}

// Key identifies the ring's node set: two rings with equal keys assign every team alike.
func (r *Ring) Key() string { return r.key }

// Without returns the ring of r's nodes minus skip (r itself when none of skip is in it).
func (r *Ring) Without(skip ...string) *Ring {
	keep := make([]string, 0, len(r.nodes))
	for _, n := range r.nodes {
		if !slices.Contains(skip, n) {
			keep = append(keep, n)
		}
	}
	if len(keep) == len(r.nodes) {
		return r
	}
	return New(keep)
}

// With returns the ring of r's nodes plus add.
func (r *Ring) With(add ...string) *Ring {
	return New(append(slices.Clone(r.nodes), add...))
}
