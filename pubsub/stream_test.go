package pubsub

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

// logBuf collects a logger's text output; safe for the Bus's goroutines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(ln, substr) {
			out = append(out, ln)
		}
	}
	return out
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// operatorStream creates WEFT_EVENTS on e the way an operator would (nats.go directly), with
// non-default limits, and returns a JetStream handle to read it back.
func operatorStream(t *testing.T, e *Embedded) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(e.ClientURL())
	testkit.OK(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	testkit.OK(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: StreamName,
		Subjects: []string{StreamSubjects}, MaxAge: 72 * time.Hour, MaxMsgsPerSubject: 500,
		Duplicates: 2 * time.Minute, AllowDirect: true})
	testkit.OK(t, err)
	return js
}

func streamConfig(t *testing.T, js jetstream.JetStream) jetstream.StreamConfig {
	t.Helper()
	st, err := js.Stream(context.Background(), StreamName)
	testkit.OK(t, err)
	info, err := st.Info(context.Background())
	testkit.OK(t, err)
	return info.Config
}

func connectRaw(t *testing.T, cfg Config) (*Bus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b, err := Connect(ctx, cfg)
	if err == nil {
		t.Cleanup(b.Close)
	}
	return b, err
}

func TestExistingStreamKept(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{})
	js := operatorStream(t, e)

	var edgeLog, originLog logBuf
	_, err := connectRaw(t, Config{URL: e.ClientURL(), Logger: edgeLog.logger()})
	testkit.OK(t, err)
	_, err = connectRaw(t, Config{URL: e.ClientURL(), Logger: originLog.logger(), ManageStream: true})
	testkit.OK(t, err)

	c := streamConfig(t, js)
	testkit.Equal(t, c.MaxAge, 72*time.Hour, "max age after edge and origin started")
	testkit.Equal(t, c.MaxMsgsPerSubject, int64(500), "max per subject after edge and origin started")

	warns := originLog.lines("level=WARN")
	testkit.True(t, len(warns) == 1, "origin warnings: %q", warns)
	w := warns[0]
	for _, want := range []string{StreamName, "max-age: stream 72h0m0s, flag 24h0m0s", "max-per-subject: stream 500, flag 100000", "--stream-update"} {
		testkit.True(t, strings.Contains(w, want), "warning %q lacks %q", w, want)
	}
	testkit.True(t, !strings.Contains(w, "replicas"), "warning %q names replicas, which are the same", w)
	testkit.True(t, len(edgeLog.lines("level=WARN")) == 0, "edge warnings: %q", edgeLog.lines("level=WARN"))
}

func TestExistingStreamUpdated(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{})
	js := operatorStream(t, e)
	var log logBuf
	_, err := connectRaw(t, Config{URL: e.ClientURL(), Logger: log.logger(), ManageStream: true, UpdateStream: true,
		Stream: StreamConfig{MaxAge: 48 * time.Hour, MaxMsgsPerSubject: 1000}})
	testkit.OK(t, err)
	c := streamConfig(t, js)
	testkit.Equal(t, c.MaxAge, 48*time.Hour, "max age after update")
	testkit.Equal(t, c.MaxMsgsPerSubject, int64(1000), "max per subject after update")
	testkit.True(t, len(log.lines("updated stream")) == 1, "update log: %q", log.lines("level="))
}

func TestNoStream(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{})
	// A user of the stream fails at once, not after ctx: the error says who creates it.
	_, err := Connect(context.Background(), Config{URL: e.ClientURL()})
	testkit.True(t, errors.Is(err, errNoStream), "edge-side connect without a stream: %v", err)
	testkit.True(t, strings.Contains(err.Error(), StreamName) && strings.Contains(err.Error(), "weft origin"),
		"error %q names neither the stream nor its owner", err)

	_, err = connectRaw(t, Config{URL: e.ClientURL(), ManageStream: true,
		Stream: StreamConfig{MaxAge: 3 * time.Hour, MaxMsgsPerSubject: 42, MaxBytes: 1 << 20}})
	testkit.OK(t, err)
	nc, err := nats.Connect(e.ClientURL())
	testkit.OK(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	testkit.OK(t, err)
	c := streamConfig(t, js)
	testkit.Equal(t, c.MaxAge, 3*time.Hour, "created max age")
	testkit.Equal(t, c.MaxMsgsPerSubject, int64(42), "created max per subject")
	testkit.Equal(t, c.MaxBytes, int64(1<<20), "created max bytes")
	testkit.Equal(t, c.Replicas, 1, "created replicas")

	// Now the stream exists, a user connects.
	_, err = connectRaw(t, Config{URL: e.ClientURL()})
	testkit.OK(t, err)
}

// TestStreamWithoutDirectGets: an operator's stream without allow_direct cannot serve weft's
// reads (gap fills, resumes, tail checks are all direct gets). A user of the stream says so at
// start; its owner names it among the differences and, with --stream-update, turns it on,
// after which reads work.
func TestStreamWithoutDirectGets(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{})
	nc, err := nats.Connect(e.ClientURL())
	testkit.OK(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	testkit.OK(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: StreamName,
		Subjects: []string{StreamSubjects}, MaxAge: 24 * time.Hour, MaxMsgsPerSubject: 100_000,
		Duplicates: 2 * time.Minute})
	testkit.OK(t, err)

	var edgeLog, ownerLog logBuf
	edge, err := connectRaw(t, Config{URL: e.ClientURL(), Logger: edgeLog.logger(), RequestTimeout: 500 * time.Millisecond})
	testkit.OK(t, err)
	warns := edgeLog.lines("level=WARN")
	testkit.True(t, len(warns) == 1 && strings.Contains(warns[0], "allow_direct"), "edge warnings: %q", warns)
	testkit.OK(t, edge.PublishEvent(context.Background(), event("T1", 1)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err = edge.Replay(ctx, "T1", 0, 1, func(*origin.Event) error { return nil })
	cancel()
	testkit.True(t, err != nil, "a replay (direct gets) on a stream without direct gets succeeded")

	owner, err := connectRaw(t, Config{URL: e.ClientURL(), Logger: ownerLog.logger(), ManageStream: true})
	testkit.OK(t, err)
	warns = ownerLog.lines("level=WARN")
	testkit.True(t, len(warns) == 1 && strings.Contains(warns[0], "allow-direct: stream false"), "owner warnings: %q", warns)
	testkit.True(t, !streamConfig(t, js).AllowDirect, "the owner changed the stream without --stream-update")
	owner.Close()

	_, err = connectRaw(t, Config{URL: e.ClientURL(), ManageStream: true, UpdateStream: true})
	testkit.OK(t, err)
	testkit.True(t, streamConfig(t, js).AllowDirect, "--stream-update left allow_direct off")
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []int64
	testkit.OK(t, edge.Replay(ctx, "T1", 0, 1, func(ev *origin.Event) error { got = append(got, ev.Seq); return nil }))
	testkit.Equal(t, got, []int64{1}, "replayed with direct gets")
}
