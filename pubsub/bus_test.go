package pubsub

import (
	"context"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

func TestPublishValidatesAndDeduplicates(t *testing.T) {
	_, b := newBus(t, Config{})
	bad := event("T1", 1)
	bad.UserID = ""
	testkit.IsErr(t, b.PublishEvent(context.Background(), bad), origin.ErrBadEvent)
	testkit.IsErr(t, b.PublishEvent(context.Background(), nil), origin.ErrBadEvent)
	noSeq := event("T1", 0)
	testkit.IsErr(t, b.PublishEvent(context.Background(), noSeq), origin.ErrBadEvent)
	last, err := b.LastSeq(context.Background(), "T1")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(0), "nothing published")

	ev := event("T1", 1)
	testkit.OK(t, b.PublishEvent(context.Background(), ev))
	testkit.OK(t, b.PublishEvent(context.Background(), ev)) // a retry: stored once
	info, err := b.stream.Info(context.Background())
	testkit.OK(t, err)
	testkit.Equal(t, info.State.Msgs, uint64(1), "stored messages")
	m, err := b.stream.GetLastMsgForSubject(context.Background(), origin.Subject("T1"))
	testkit.OK(t, err)
	testkit.Equal(t, m.Header.Get("Nats-Msg-Id"), "T1:1", "message ID")
}

func TestInProcessMode(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{NoListen: true})
	testkit.Equal(t, e.ClientURL(), "", "client URL of an in-process server")
	testkit.Equal(t, e.Port(), 0, "port of an in-process server")
	b := connect(t, Config{Embedded: e, Name: "in-process"})
	r := newRecorder(t, "T1")
	subscribe(t, b, "T1", r).Start(0)
	publish(t, b, "T1", 1, 3)
	testkit.Eventually(t, func() bool { return r.count() >= 3 }, "3 events")
	testkit.Equal(t, r.got(), seqRange(1, 3), "delivered seqs")
}

func TestExternalURL(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{})
	testkit.True(t, e.Port() > 0, "port %d", e.Port())
	pub := connect(t, Config{URL: e.ClientURL()})
	sub := connect(t, Config{URL: e.ClientURL() + "," + e.ClientURL(), Stream: StreamConfig{Memory: false}})
	r := newRecorder(t, "T1")
	subscribe(t, sub, "T1", r).Start(0)
	publish(t, pub, "T1", 1, 3)
	testkit.Eventually(t, func() bool { return r.count() >= 3 }, "3 events")
	testkit.Equal(t, r.got(), seqRange(1, 3), "delivered seqs")
}

func TestStreamConfigApplied(t *testing.T) {
	_, b := newBus(t, Config{Stream: StreamConfig{MaxAge: time.Hour, MaxMsgsPerSubject: 7, MaxBytes: 1 << 20,
		Memory: true, DuplicateWindow: time.Minute}})
	info, err := b.stream.Info(context.Background())
	testkit.OK(t, err)
	c := info.Config
	testkit.Equal(t, c.Subjects, []string{StreamSubjects}, "subjects")
	testkit.Equal(t, c.MaxAge, time.Hour, "max age")
	testkit.Equal(t, c.MaxMsgsPerSubject, int64(7), "max msgs per subject")
	testkit.Equal(t, c.MaxBytes, int64(1<<20), "max bytes")
	testkit.Equal(t, c.Duplicates, time.Minute, "duplicate window")
	testkit.Equal(t, c.AllowDirect, true, "allow direct")
	testkit.Equal(t, c.Storage.String(), "Memory", "storage")
}

func TestStreamDefaults(t *testing.T) {
	c, err := StreamConfig{}.jetstream()
	testkit.OK(t, err)
	testkit.Equal(t, c.MaxAge, 24*time.Hour, "max age")
	testkit.Equal(t, c.MaxMsgsPerSubject, int64(100_000), "max msgs per subject")
	testkit.Equal(t, c.MaxBytes, int64(-1), "max bytes")
	testkit.Equal(t, c.Replicas, 1, "replicas")
	testkit.Equal(t, c.Duplicates, 2*time.Minute, "duplicate window")
	_, err = StreamConfig{MaxAge: -1}.jetstream()
	testkit.True(t, err != nil, "negative max age accepted")
}

func TestConfigErrors(t *testing.T) {
	_, err := Connect(context.Background(), Config{})
	testkit.True(t, err != nil, "config without URL or Embedded accepted")
	_, err = Connect(context.Background(), Config{URL: "nats://x", SubPendingMsgs: -1})
	testkit.True(t, err != nil, "negative SubPendingMsgs accepted")
	e, err := NewEmbedded(EmbeddedConfig{})
	testkit.OK(t, err)
	_, err = Connect(context.Background(), Config{Embedded: e})
	testkit.True(t, err != nil, "connect to an embedded server not started")
	e.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Connect(ctx, Config{URL: "nats://127.0.0.1:1"})
	testkit.True(t, err != nil, "connect to nothing succeeded")

	_, err = NewEmbedded(EmbeddedConfig{Port: 70000})
	testkit.True(t, err != nil, "port out of range accepted")
	_, err = NewEmbedded(EmbeddedConfig{Host: "not a host"})
	testkit.True(t, err != nil, "bad host accepted")
}

func TestEmbeddedLifecycle(t *testing.T) {
	e, err := NewEmbedded(EmbeddedConfig{})
	testkit.OK(t, err)
	testkit.OK(t, e.Start())
	dir := e.StoreDir()
	testkit.True(t, dir != "", "no store dir")
	testkit.True(t, e.Start() != nil, "second Start accepted")
	e.Shutdown()
	e.Shutdown()
	_, statErr := osStat(dir)
	testkit.True(t, statErr != nil, "temporary store dir %s left behind", dir)
}
