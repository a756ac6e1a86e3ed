package pubsub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// startServer starts an in-process NATS server with JetStream on loopback. The server writes
// the ports it chose back into opts.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", server.RANDOM_PORT, true, true
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	srv, err := server.NewServer(opts)
	testkit.OK(t, err)
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return srv
}

func clientURL(s *server.Server) string { return "nats://" + s.Addr().(*net.TCPAddr).String() }

// hubAndRegion starts a hub server in JetStream domain "hub" and a leaf node of it in domain
// "region-a", connected, and returns their client URLs.
func hubAndRegion(t *testing.T) (hub, region string) {
	h, r := hubAndRegionServers(t)
	return clientURL(h), clientURL(r)
}

func hubAndRegionServers(t *testing.T) (hub, region *server.Server) {
	t.Helper()
	hopts := &server.Options{ServerName: "hub", JetStreamDomain: "hub",
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: server.RANDOM_PORT}}
	h := startServer(t, hopts)
	leafURL, err := url.Parse(fmt.Sprintf("nats-leaf://127.0.0.1:%d", hopts.LeafNode.Port))
	testkit.OK(t, err)
	l := startServer(t, &server.Options{ServerName: "leaf-a", JetStreamDomain: "region-a",
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 100 * time.Millisecond,
			Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{leafURL}}}}})
	testkit.Eventually(t, func() bool { return l.NumLeafNodes() == 1 && h.NumLeafNodes() == 1 }, "the leaf node connected")
	return h, l
}

// connectUser connects a Bus that only uses the stream, retrying until the stream exists (a
// region's mirror is made by the owner a moment after the owner connected).
func connectUser(t *testing.T, cfg Config) *Bus {
	t.Helper()
	var b *Bus
	var last error
	testkit.EventuallyOr(t, 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b, last = Connect(ctx, cfg)
		return last == nil
	}, "a bus on the stream", func() { t.Logf("last error: %v", last) })
	t.Cleanup(b.Close)
	return b
}

// TestRegionalMirror: the owner, on the hub, makes the region's mirror through the region's
// domain; an edge's bus on the region's leaf node reads the mirror as its WEFT_EVENTS with no
// setting of its own, fills what it subscribed after from it and follows live events once and
// in order; a bus on the hub reads the same mirror by naming the region's domain.
func TestRegionalMirror(t *testing.T) {
	hubURL, regionURL := hubAndRegion(t)
	owner := connect(t, Config{URL: hubURL, Name: "origin", Stream: StreamConfig{Mirrors: []string{"region-a"}}})
	publish(t, owner, "T1", 1, 5)

	edge := connectUser(t, Config{URL: regionURL, Name: "edge"})
	cfg := edge.stream.CachedInfo().Config
	testkit.Equal(t, mirrorOf(cfg), "WEFT_EVENTS via $JS.hub.API", "the edge's stream")
	testkit.True(t, cfg.AllowDirect, "the mirror allows direct gets")
	testkit.Equal(t, len(cfg.Subjects), 0, "the mirror's subjects")

	// The mirror copies the stream a moment after it is made.
	testkit.Eventually(t, func() bool {
		last, err := edge.LastSeq(context.Background(), "T1")
		return err == nil && last == 5
	}, "the mirror holding 5 events")
	r := newRecorder(t, "T1")
	subscribe(t, edge, "T1", r).Start(0) // 1..5 from the mirror
	testkit.Eventually(t, func() bool { return r.count() >= 5 }, "5 events filled from the mirror")
	publish(t, owner, "T1", 6, 20)
	testkit.Eventually(t, func() bool { return r.count() >= 20 }, "20 events")
	testkit.Equal(t, fmt.Sprint(r.got()), fmt.Sprint(seqRange(1, 20)), "events, in order, once each")

	remote := connectUser(t, Config{URL: hubURL, Name: "remote", Domain: "region-a"})
	testkit.Equal(t, remote.directSubject, "$JS.region-a.API.DIRECT.GET.WEFT_EVENTS", "direct get subject")
	testkit.Equal(t, mirrorOf(remote.stream.CachedInfo().Config), "WEFT_EVENTS via $JS.hub.API", "the stream in domain region-a")
	var got []int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testkit.OK(t, remote.Replay(ctx, "T1", 10, 20, func(ev *origin.Event) error {
		got = append(got, ev.Seq)
		return nil
	}))
	testkit.Equal(t, fmt.Sprint(got), "[11 12 13 14 15 16 17 18 19 20]", "replayed from the region's mirror")

	// A second owner (the origin restarted) finds the mirror as it made it and leaves it.
	connect(t, Config{URL: hubURL, Name: "origin-2", Stream: StreamConfig{Mirrors: []string{"region-a"}}})
	publish(t, owner, "T1", 21, 21)
	testkit.Eventually(t, func() bool { return r.count() >= 21 }, "21 events")
	testkit.Equal(t, fmt.Sprint(r.got()), fmt.Sprint(seqRange(1, 21)), "events, in order, once each")
}

// TestMirrorsNeedHubDomain: an owner asked for mirrors on a JetStream without a domain fails at
// once, saying so.
func TestMirrorsNeedHubDomain(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{NoListen: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Connect(ctx, Config{Embedded: e, ManageStream: true, Stream: StreamConfig{Mirrors: []string{"region-a"}}})
	testkit.True(t, errors.Is(err, errNoHubDomain), "connect: %v, want %v", err, errNoHubDomain)
}

// TestDomainConfigErrors: domains that cannot work are refused before connecting.
func TestDomainConfigErrors(t *testing.T) {
	e, err := NewEmbedded(EmbeddedConfig{})
	testkit.OK(t, err)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "nats://127.0.0.1:1", Domain: "a.b"}, "invalid JetStream domain"},
		{Config{URL: "nats://127.0.0.1:1", Domain: "a*"}, "invalid JetStream domain"},
		{Config{Embedded: e, Domain: "hub"}, "embedded server"},
		{Config{URL: "nats://127.0.0.1:1", Stream: StreamConfig{Mirrors: []string{""}}}, "invalid JetStream domain"},
		{Config{URL: "nats://127.0.0.1:1", Domain: "hub", Stream: StreamConfig{Mirrors: []string{"hub"}}}, "own domain"},
		{Config{URL: "nats://127.0.0.1:1", Stream: StreamConfig{MirrorReplicas: 6}}, "MirrorReplicas"},
		{Config{URL: "nats://127.0.0.1:1", FallbackDomain: "a b"}, "invalid JetStream domain"},
		{Config{URL: "nats://127.0.0.1:1", Domain: "hub", FallbackDomain: "hub"}, "another copy"},
		{Config{Embedded: e, FallbackDomain: "hub"}, "embedded server"},
	} {
		_, err := tc.cfg.withDefaults()
		testkit.True(t, err != nil && strings.Contains(err.Error(), tc.want), "config %+v: %v, want an error saying %q", tc.cfg, err, tc.want)
	}
}

// TestFallbackDomain: a region's stream that never gets a team's events (here a mirror that
// filters them out, standing for one resuming after a partition) gives way to the stream of
// record across the WAN: a gap a live message proved is filled from the fallback domain after
// a second, and a replay reads it too.
func TestFallbackDomain(t *testing.T) {
	hub, region := hubAndRegionServers(t)
	hubURL, regionURL := clientURL(hub), clientURL(region)
	owner := connect(t, Config{URL: hubURL, Name: "origin"})
	nc, err := nats.Connect(regionURL)
	testkit.OK(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	testkit.OK(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: StreamName, AllowDirect: true,
		Mirror: &jetstream.StreamSource{Name: StreamName, FilterSubject: origin.Subject("T2"),
			External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API"}}})
	testkit.OK(t, err)
	edge := connectUser(t, Config{URL: regionURL, Name: "edge", FallbackDomain: "hub"})

	publish(t, owner, "T1", 1, 5)
	r := newRecorder(t, "T1")
	subscribe(t, edge, "T1", r).Start(0) // the region's stream holds nothing of T1
	// The edge's interest reaches the hub over the leaf node connection a moment later; then
	// seq 6 is live, and seqs 1..5 a gap.
	testkit.Eventually(t, func() bool { return hub.GlobalAccount().SubscriptionInterest(origin.Subject("T1")) }, "interest in T1 at the hub")
	// One live message reveals the gap. A core NATS message can be lost (a leaf connection
	// re-established under load: seen once in 8 runs beside stress-ng) and the tail checks
	// read only this region's mirror, which here holds nothing of T1; so a later live message
	// stands in for a lost one, as the next change of a team does in production.
	last, lastPublish := int64(6), time.Now()
	publish(t, owner, "T1", last, last)
	testkit.EventuallyOr(t, 20*time.Second, func() bool {
		if r.count() >= 6 {
			return true
		}
		if edge.Stats().Received == 0 && time.Since(lastPublish) > 3*time.Second {
			last++
			publish(t, owner, "T1", last, last)
			lastPublish = time.Now()
		}
		return false
	}, "6 events", func() {
		t.Logf("got %v; published up to %d; edge stats %+v", r.got(), last, edge.Stats())
	})
	testkit.Eventually(t, func() bool { return r.count() >= int(last) }, "every event published")
	testkit.Equal(t, fmt.Sprint(r.got()), fmt.Sprint(seqRange(1, last)), "events, in order, once each")
	testkit.True(t, edge.Stats().FallbackReads >= 1, "no read of the fallback domain")

	var got []int64
	testkit.OK(t, edge.Replay(ctx, "T1", 2, 6, func(ev *origin.Event) error {
		got = append(got, ev.Seq)
		return nil
	}))
	testkit.Equal(t, fmt.Sprint(got), "[3 4 5 6]", "replayed through the fallback")
}
