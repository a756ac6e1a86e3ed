package natscluster_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/natscluster"
)

func TestMain(m *testing.M) {
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		natscluster.Remove()
		os.Exit(code)
	}))
}

// TestKillAndRestart: a stream with three replicas keeps taking messages while one server is
// killed, and the restarted server, on its old ports and store, catches up.
func TestKillAndRestart(t *testing.T) {
	c := natscluster.Start(t, 3)
	nc := c.Conn(t)
	js, err := jetstream.New(nc)
	testkit.OK(t, err)
	// Each call is bounded by the client's default timeout (5s); a deadline for the whole test
	// would expire under load in the middle of a later step.
	ctx := t.Context()
	natscluster.CreateStream(t, js, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	c.WaitStreamCurrent(t, nc, "T", 3)

	sent := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			sent++
			id := fmt.Sprint(sent)
			// A publish may fail while the stream elects a new leader; the same message is
			// sent again until stored (the dedup ID makes the retry safe).
			var last error
			testkit.EventuallyOr(t, natscluster.ReadyWithin, func() bool {
				_, last = js.Publish(ctx, "t.x", []byte("m"), jetstream.WithMsgID(id))
				return last == nil
			}, "a publish stored", func() { t.Logf("last publish error: %v; connected to %s", last, nc.ConnectedUrl()) })
		}
	}
	publish(10)
	c.Kill(0)
	testkit.True(t, !c.Running(0), "server 0 still running after Kill")
	publish(10)
	c.Start(0)
	c.WaitReady(t)
	c.WaitStreamCurrent(t, nc, "T", 3)
	st, err := js.Stream(ctx, "T")
	testkit.OK(t, err)
	info, err := st.Info(ctx)
	testkit.OK(t, err)
	testkit.Equal(t, info.State.Msgs, uint64(20), "messages stored")

	c.StopAll()
	for i := range c.N() {
		testkit.True(t, !c.Running(i), "server %d running after StopAll", i)
	}
	c.StartAll()
	c.WaitReady(t)
	c.WaitStreamCurrent(t, nc, "T", 3)
	info, err = st.Info(ctx)
	testkit.OK(t, err)
	testkit.Equal(t, info.State.Msgs, uint64(20), "messages stored after a full restart")
}

// TestLeafNode: a leaf node in a JetStream domain of its own connects to a hub; a stream in
// the leaf's domain mirrors the hub's stream of the same name through the domain's API prefix,
// answers direct gets locally, and a core subscription on the leaf gets the hub's messages.
func TestLeafNode(t *testing.T) {
	hub := natscluster.StartWith(t, 1, natscluster.Options{Name: "hub", Domain: "hub", LeafNodes: true})
	leaf := natscluster.StartWith(t, 1, natscluster.Options{Name: "leaf", Domain: "leaf",
		Remotes: []string{"nats-leaf://" + hub.LeafAddr(0)}})
	testkit.Eventually(t, func() bool { n, err := leaf.Leafs(0); return err == nil && n == 1 }, "the leaf connected")
	n, err := hub.Leafs(0)
	testkit.OK(t, err)
	testkit.Equal(t, n, 1, "leaf connections at the hub")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hjs, err := jetstream.New(hub.Conn(t))
	testkit.OK(t, err)
	_, err = hjs.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, AllowDirect: true})
	testkit.OK(t, err)
	lnc := leaf.Conn(t)
	live, err := lnc.SubscribeSync("t.x")
	testkit.OK(t, err)
	testkit.OK(t, lnc.Flush())
	ljs, err := jetstream.New(lnc) // the leaf's own domain, without naming it
	testkit.OK(t, err)
	mirror, err := ljs.CreateStream(ctx, jetstream.StreamConfig{Name: "T", AllowDirect: true,
		Mirror: &jetstream.StreamSource{Name: "T", External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API"}}})
	testkit.OK(t, err)
	// The subscription's interest crosses to the hub a moment after the leaf has it.
	testkit.Eventually(t, func() bool {
		_, err := hjs.Publish(ctx, "t.x", []byte("probe"))
		testkit.OK(t, err)
		_, err = live.NextMsg(20 * time.Millisecond)
		return err == nil
	}, "a live message on the leaf")
	for i := range 5 {
		_, err := hjs.Publish(ctx, "t.x", fmt.Appendf(nil, "m%d", i))
		testkit.OK(t, err)
	}
	testkit.Eventually(t, func() bool {
		m, err := mirror.GetLastMsgForSubject(ctx, "t.x")
		return err == nil && string(m.Data) == "m4"
	}, "the mirror's last message, by direct get")
	testkit.True(t, mirror.CachedInfo().Config.AllowDirect, "the mirror allows direct gets")
	info, err := mirror.Info(ctx)
	testkit.OK(t, err)
	testkit.True(t, info.State.Msgs >= 6, "the mirror holds %d messages, want the probes and 5", info.State.Msgs)
	for i := 0; i < 5; {
		m, err := live.NextMsg(10 * time.Second)
		testkit.OK(t, err)
		if string(m.Data) != "probe" {
			testkit.Equal(t, string(m.Data), fmt.Sprintf("m%d", i), "live message")
			i++
		}
	}
}
