package ring

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Edge membership travels on core NATS (not the stream): an announcement is only worth its
// latest value, and a missed one is replaced by the next.

// AnnounceSubject carries every edge's Announcement.
const AnnounceSubject = "weft.edges.announce"

// Edge states an announcement can carry.
const (
	// EdgeServing edges are in the ring.
	EdgeServing = "serving"
	// EdgeDraining edges are leaving: out of the ring, still serving what they hold until their
	// sessions have moved.
	EdgeDraining = "draining"
)

// DefaultRegion is the region of an edge or proxy given none, and of an announcement that
// names none (an edge from before regions): a deployment that never names a region is one
// region, as it always was.
const DefaultRegion = "default"

// CheckRegion reports what makes name no region name: 1-64 ASCII letters, digits, '-', '_'
// or '.'. Region names travel in announcements, a header (protocol.HeaderRegion), hello
// frames and metric labels.
func CheckRegion(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("region %q: must be 1-64 bytes", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("region %q: only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// RegionOr is region, or DefaultRegion when it is empty.
func RegionOr(region string) string {
	if region == "" {
		return DefaultRegion
	}
	return region
}

// Announcement is what an edge says about itself, every interval.
type Announcement struct {
	Node  string `json:"node"`
	Addr  string `json:"addr"` // host:port of its client endpoints
	State string `json:"state"`
	// Region is the edge's region; "" (an edge from before regions) is DefaultRegion. Node
	// names are unique across regions: a region's edges and the proxies of other regions
	// that fall back to it see the same names.
	Region string `json:"region,omitempty"`
	// Sessions and Teams are its load; Admitting is false while it refuses new connections.
	Sessions  int64 `json:"sessions"`
	Teams     int   `json:"teams"`
	Admitting bool  `json:"admitting"`
	// LagP99MS is the 99th percentile of how long its runnable goroutines waited for a CPU
	// over the last interval (see edge/lag.go): whether it keeps up with what it has.
	// Proxies pace new connections to it by this. 0: not measured.
	LagP99MS float64 `json:"lag_p99_ms,omitempty"`
	// AcceptRate is how many new connections a second it takes when it keeps up (its
	// --connect-rate): proxies send it new connections at that pace until its lag says
	// otherwise. 0: not said (the proxy's own --edge-rate then).
	AcceptRate float64 `json:"accept_rate,omitempty"`
	// AcceptBurst is how many new connections it takes at once above that rate (its
	// --connect-burst): proxies let as many through at once, so that a small herd (the
	// clients of a lost edge, spread over the survivors) is not held to the rate. 0: not
	// said (the proxy's own --edge-burst then).
	AcceptBurst int `json:"accept_burst,omitempty"`
	// IntervalMS is how often it announces, so that watchers know when it is overdue.
	IntervalMS int64 `json:"interval_ms"`
	// Started tells a restarted edge (same name) from its previous life.
	Started time.Time `json:"started"`
}

// Validate reports what makes a an announcement no watcher should trust.
func (a *Announcement) Validate() error {
	switch {
	case a.Node == "" || len(a.Node) > 128:
		return errors.New("announcement: node must be 1-128 bytes")
	case a.Addr == "" || len(a.Addr) > 256:
		return errors.New("announcement: addr must be 1-256 bytes")
	case a.State != EdgeServing && a.State != EdgeDraining:
		return fmt.Errorf("announcement: unknown state %q", a.State)
	case a.Region != "" && CheckRegion(a.Region) != nil:
		return fmt.Errorf("announcement: %w", CheckRegion(a.Region))
	case a.IntervalMS <= 0:
		return errors.New("announcement: interval_ms must be positive")
	case !(a.LagP99MS >= 0 && a.LagP99MS < 1e9): // also NaN
		return errors.New("announcement: lag_p99_ms must be a finite non-negative number")
	case !(a.AcceptRate >= 0 && a.AcceptRate < 1e9):
		return errors.New("announcement: accept_rate must be a finite non-negative number")
	case a.AcceptBurst < 0 || a.AcceptBurst >= 1e9:
		return errors.New("announcement: accept_burst must be non-negative and under 1e9")
	}
	return nil
}

// Announcements publishes and watches announcements on a NATS connection. It needs only the
// NATS client: a proxy watches the edges with it without linking package pubsub, whose
// embedded NATS server (and JetStream) a proxy has no use for. *pubsub.Bus uses it too.
type Announcements struct {
	Conn   *nats.Conn
	Logger *slog.Logger // nil: discard
}

// Announce publishes a. It does not wait for anyone to hear it.
func (n Announcements) Announce(a Announcement) error {
	if err := a.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return n.Conn.Publish(AnnounceSubject, data)
}

// WatchEdges calls fn with every valid announcement, on one goroutine (the subscription's), in
// arrival order. Malformed ones are logged and dropped. The returned stop ends the
// subscription.
func (n Announcements) WatchEdges(fn func(Announcement)) (stop func(), err error) {
	log := n.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := n.Conn.Subscribe(AnnounceSubject, func(m *nats.Msg) {
		var a Announcement
		if err := json.Unmarshal(m.Data, &a); err != nil {
			log.Warn("ring: malformed edge announcement", "err", err, "bytes", len(m.Data))
			return
		}
		if err := a.Validate(); err != nil {
			log.Warn("ring: invalid edge announcement", "err", err, "node", a.Node)
			return
		}
		fn(a)
	})
	if err != nil {
		return nil, fmt.Errorf("ring: watch edges: %w", err)
	}
	// Announcements are small and frequent; a watcher that falls behind only ever needs the
	// newest, so it may drop rather than hold many.
	sub.SetPendingLimits(4096, 8<<20)
	return func() { sub.Unsubscribe() }, nil
}
