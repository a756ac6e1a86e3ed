package pubsub

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/natsconn"
)

// StreamName and StreamSubjects are the JetStream stream of docs/origin.md.
const (
	StreamName     = "WEFT_EVENTS"
	StreamSubjects = "weft.events.>"
)

// StreamConfig sets the limits of the WEFT_EVENTS stream, used only by the stream's owner
// (Config.ManageStream): Connect creates the stream with these values when it does not exist.
// The zero value is the default of each field.
type StreamConfig struct {
	// MaxAge is how long the stream keeps an event: how far back resume and gap filling reach.
	// 0 = 24h.
	MaxAge time.Duration

	// MaxMsgsPerSubject caps the events kept per team. 0 = 100,000; negative = no cap.
	MaxMsgsPerSubject int64

	// MaxBytes caps the size of the whole stream; the oldest events go first. 0 = no cap.
	MaxBytes int64

	// Replicas is the number of copies in a JetStream cluster. 0 = 1.
	Replicas int

	// Memory keeps the stream in memory instead of files: faster, gone when the server stops.
	Memory bool

	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id to drop a retried
	// publish. 0 = 2m.
	DuplicateWindow time.Duration

	// Mirrors are the JetStream domains of edge regions (their leaf nodes) in which the owner
	// keeps a mirror of the stream, named WEFT_EVENTS too, for the region's edges to replay
	// and fill gaps from without crossing the WAN (mirror.go). Each mirror takes MaxAge,
	// MaxMsgsPerSubject, MaxBytes and Memory from this config and MirrorReplicas copies. The
	// owner's own JetStream must have a domain (the mirror reaches the stream through it).
	Mirrors []string

	// MirrorReplicas is the number of copies of each mirror in its region. 0 = 1.
	MirrorReplicas int
}

// Config configures Connect. The zero value of each field is its default.
type Config struct {
	// URL is an external NATS server or cluster, comma-separated URLs: the short way to say
	// NATS.URLs, for a NATS that needs neither TLS nor credentials. Both "" = Embedded.
	URL string

	// NATS is how to reach an external NATS: its seed URLs, TLS and credentials (the --nats*
	// flags of every weft process; see natsconn.Options). Connect validates it before
	// connecting. Unused with Embedded.
	NATS natsconn.Options

	// Embedded is a started embedded server, used when URL is "". In-process when it does not
	// listen, over loopback TCP otherwise.
	Embedded *Embedded

	// Domain is the JetStream domain of the WEFT_EVENTS stream the Bus uses: created (by an
	// owner), read (replay, gap filling, tail checks) and published to with an expected stream.
	// "" = the JetStream of the NATS server the Bus connects to, which on an edge region's leaf
	// node with a domain of its own is that region's (docs/architecture.md, "Regions"). Live
	// events are core NATS subscriptions, which no domain confines. Unused with Embedded.
	Domain string

	// FallbackDomain is the JetStream domain of the stream of record (the hub's), which a Bus
	// reading a region's mirror (Domain) reads across the WAN for events the mirror lacks: a
	// gap a live message proved that the mirror has not filled within a second (after a
	// partition a mirror resumes tens of seconds after its leaf node reconnected), or a seq
	// the mirror does not hold (fallback.go). "" = none: such a fill waits for the mirror.
	FallbackDomain string

	// Name is the connection name the server shows. "" = "weft".
	Name string

	// Logger receives the package's log. nil = discard.
	Logger *slog.Logger

	// ManageStream makes this process the owner of the WEFT_EVENTS stream: Connect creates it
	// with Stream's limits when it does not exist. One component owns the stream (the origin
	// side: `weft origin`, and `weft dev`, which runs the origin) so that an operator's settings
	// survive restarts of everything else; edges and the proxy leave it false, only use the
	// stream, and Connect fails at once, naming the stream and who creates it, when it is
	// missing (an edge needs it for gap filling and replay). An owner that finds the stream
	// with limits other than Stream's logs one warning naming each difference and leaves the
	// stream as it is, unless UpdateStream. A bool rather than a nil-able Stream so that the
	// limits (and their defaults) stay one value whatever the role.
	ManageStream bool

	// UpdateStream, with ManageStream, updates an existing stream whose limits differ from
	// Stream's to Stream's (an explicit operator choice: `--stream-update`) and logs what changed.
	UpdateStream bool

	// Stream sets the limits of the WEFT_EVENTS stream; read only when ManageStream.
	Stream StreamConfig

	// SubPendingMsgs is how many live messages each team subscription holds for its delivery
	// goroutine. Beyond it NATS drops messages (a slow consumer), and the subscription fills
	// the gap from JetStream. Each slot costs 8 bytes per subscription. 0 = 1024.
	SubPendingMsgs int

	// GapCheckInterval is how often an idle team subscription asks the stream whether it
	// missed a tail of events (a subscription also asks after every reconnect). 0 = 5s.
	GapCheckInterval time.Duration

	// HubBeatInterval is how often the stream's owner publishes its heartbeat, and how often
	// other buses look for it: a region cut off from the hub is told by 5 missed beats
	// (hub.go). 0 = 1s.
	HubBeatInterval time.Duration

	// RequestTimeout bounds each JetStream call (publish ack, message reads). 0 = 5s.
	RequestTimeout time.Duration

	// reconnectDelay replaces the reconnect wait; tests use it to hold a reconnect back.
	reconnectDelay func(attempts int) time.Duration
}

const (
	defaultMaxAge            = 24 * time.Hour
	defaultMaxMsgsPerSubject = 100_000
	defaultDuplicateWindow   = 2 * time.Minute
	defaultSubPendingMsgs    = 1024
	defaultGapCheckInterval  = 5 * time.Second
	defaultRequestTimeout    = 5 * time.Second
)

func (c Config) withDefaults() (Config, error) {
	if c.URL != "" {
		if c.NATS.URLs != "" && c.NATS.URLs != c.URL {
			return c, errors.New("pubsub: config: URL and NATS.URLs differ; set one")
		}
		c.NATS.URLs = c.URL
	}
	if c.NATS.URLs == "" && c.Embedded == nil {
		return c, errors.New("pubsub: config: neither URL nor Embedded set")
	}
	if c.NATS.URLs != "" {
		if err := c.NATS.Validate(); err != nil {
			return c, err
		}
	}
	if c.Domain != "" {
		if c.Embedded != nil && c.NATS.URLs == "" && !c.Embedded.regional() {
			return c, errors.New("pubsub: config: Domain set with an embedded server that has no JetStream domain and no leaf nodes")
		}
		if err := validDomain(c.Domain); err != nil {
			return c, fmt.Errorf("pubsub: config: Domain: %w", err)
		}
	}
	if c.FallbackDomain != "" {
		if c.Embedded != nil && c.NATS.URLs == "" && !c.Embedded.regional() {
			return c, errors.New("pubsub: config: FallbackDomain set with an embedded server that has no JetStream domain and no leaf nodes")
		}
		if err := validDomain(c.FallbackDomain); err != nil {
			return c, fmt.Errorf("pubsub: config: FallbackDomain: %w", err)
		}
		if c.FallbackDomain == c.Domain {
			return c, errors.New("pubsub: config: FallbackDomain is Domain: a fallback is another copy of the stream")
		}
	}
	for _, d := range c.Stream.Mirrors {
		if err := validDomain(d); err != nil {
			return c, fmt.Errorf("pubsub: config: Stream.Mirrors: %w", err)
		}
		if d == c.Domain {
			return c, fmt.Errorf("pubsub: config: Stream.Mirrors: %q is the stream's own domain", d)
		}
	}
	if c.Stream.MirrorReplicas < 0 || c.Stream.MirrorReplicas > MaxReplicas {
		return c, fmt.Errorf("pubsub: config: Stream.MirrorReplicas: want 0 to %d, got %d", MaxReplicas, c.Stream.MirrorReplicas)
	}
	if c.SubPendingMsgs < 0 || c.GapCheckInterval < 0 || c.RequestTimeout < 0 {
		return c, errors.New("pubsub: config: negative SubPendingMsgs, GapCheckInterval or RequestTimeout")
	}
	if c.Name == "" {
		c.Name = "weft"
	}
	if c.SubPendingMsgs == 0 {
		c.SubPendingMsgs = defaultSubPendingMsgs
	}
	if c.GapCheckInterval == 0 {
		c.GapCheckInterval = defaultGapCheckInterval
	}
	if c.HubBeatInterval <= 0 {
		c.HubBeatInterval = defaultHubBeatInterval
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	return c, nil
}

// MaxReplicas is the most copies a JetStream stream can have.
const MaxReplicas = 5

// MinDuplicateWindow is the shortest duplicate window JetStream takes.
const MinDuplicateWindow = 100 * time.Millisecond

func (s StreamConfig) jetstream() (jetstream.StreamConfig, error) {
	if s.MaxAge < 0 || s.MaxBytes < 0 || s.Replicas < 0 || s.DuplicateWindow < 0 {
		return jetstream.StreamConfig{}, errors.New("pubsub: stream config: negative limit")
	}
	if s.Replicas > MaxReplicas {
		return jetstream.StreamConfig{}, fmt.Errorf("pubsub: stream config: %d replicas, at most %d", s.Replicas, MaxReplicas)
	}
	if s.DuplicateWindow > 0 && s.DuplicateWindow < MinDuplicateWindow {
		// JetStream refuses it, and Connect would retry the refusal for ever.
		return jetstream.StreamConfig{}, fmt.Errorf("pubsub: stream config: duplicate window %v, at least %v", s.DuplicateWindow, MinDuplicateWindow)
	}
	cfg := jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "weft team events, one subject per team",
		Subjects:          []string{StreamSubjects},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            s.MaxAge,
		MaxMsgsPerSubject: s.MaxMsgsPerSubject,
		Storage:           jetstream.FileStorage,
		Replicas:          s.Replicas,
		Duplicates:        s.DuplicateWindow,
		// Direct gets are answered by the stream itself (any replica) instead of the JetStream
		// API: cheap enough for per-team tail checks and batched range reads.
		AllowDirect: true,
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = defaultMaxAge
	}
	switch {
	case cfg.MaxMsgsPerSubject == 0:
		cfg.MaxMsgsPerSubject = defaultMaxMsgsPerSubject
	case cfg.MaxMsgsPerSubject < 0:
		cfg.MaxMsgsPerSubject = -1
	}
	if s.MaxBytes > 0 {
		cfg.MaxBytes = s.MaxBytes
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if s.Memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = defaultDuplicateWindow
	}
	if cfg.Duplicates > cfg.MaxAge {
		cfg.Duplicates = cfg.MaxAge
	}
	return cfg, nil
}

// validDomain refuses a JetStream domain that is not one subject token: the domain is a token
// of the API prefix ($JS.<domain>.API).
func validDomain(d string) error {
	if d == "" || strings.ContainsAny(d, ".*> \t\r\n") {
		return fmt.Errorf("invalid JetStream domain %q: want a name without dots, wildcards or spaces", d)
	}
	return nil
}

// apiPrefix is the JetStream API prefix of domain ("" = the connected server's JetStream).
func apiPrefix(domain string) string {
	if domain == "" {
		return "$JS.API"
	}
	return "$JS." + domain + ".API"
}
