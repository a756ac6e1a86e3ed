package natscluster_test

import (
	"fmt"
	"os"
	"testing"

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
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	testkit.OK(t, err)
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
