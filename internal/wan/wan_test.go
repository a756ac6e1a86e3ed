package wan

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// echo is an upstream that writes back whatever it reads, on every connection.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testkit.OK(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func link(t *testing.T, cfg Config) *Link {
	t.Helper()
	l, err := Listen(cfg)
	testkit.OK(t, err)
	t.Cleanup(func() { testkit.OK(t, l.Close()) })
	return l
}

func dial(t *testing.T, l *Link) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr())
	testkit.OK(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back, within d.
func roundTrip(t *testing.T, c net.Conn, msg string, d time.Duration) {
	t.Helper()
	_, err := c.Write([]byte(msg))
	testkit.OK(t, err)
	testkit.OK(t, c.SetReadDeadline(time.Now().Add(d)))
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	testkit.OK(t, err)
	testkit.Equal(t, string(got), msg, "echoed")
}

// TestCarriesInOrder sends a megabyte through an echo in writes of random sizes while reading
// it back: every byte arrives, in order, and the counters and the tap saw each byte once.
func TestCarriesInOrder(t *testing.T) {
	var mu sync.Mutex
	tapped := map[Direction]int{}
	l := link(t, Config{Upstreams: []string{echo(t)}, RTT: 20 * time.Millisecond,
		Tap: func(_ uint64, dir Direction, b []byte) {
			mu.Lock()
			tapped[dir] += len(b)
			mu.Unlock()
		}})
	c := dial(t, l)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rand.N(50_000))
			if _, err := c.Write(rest[:n]); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			rest = rest[n:]
		}
	})
	got := make([]byte, len(data))
	testkit.OK(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err := io.ReadFull(c, got)
	testkit.OK(t, err)
	wg.Wait()
	testkit.True(t, bytes.Equal(got, data), "the bytes came back changed or out of order")

	// The link counts a chunk once its write returned, which may be after the reader has it.
	testkit.Eventually(t, func() bool {
		st := l.Stats()
		mu.Lock()
		defer mu.Unlock()
		return st.Down.Bytes >= int64(len(data)) && tapped[Down] >= len(data)
	}, "the last chunk down counted")
	st := l.Stats()
	testkit.Equal(t, st.Up.Bytes, int64(len(data)), "bytes up")
	testkit.Equal(t, st.Down.Bytes, int64(len(data)), "bytes down")
	testkit.True(t, st.Up.Chunks >= int64(len(data)/chunkSize), "%d chunks up for %d bytes", st.Up.Chunks, len(data))
	testkit.Equal(t, st.Queued, int64(0), "bytes queued")
	testkit.Equal(t, st.Open, int64(1), "connections open")
	mu.Lock()
	testkit.Equal(t, tapped[Up], len(data), "bytes tapped up")
	testkit.Equal(t, tapped[Down], len(data), "bytes tapped down")
	mu.Unlock()

	c.Close()
	testkit.Eventually(t, func() bool { return l.Stats().Open == 0 }, "the connection closed through the link")
}

// TestLatency: a round trip costs at least the link's RTT (a lower bound, which no load can
// break), and a megabyte sent at once costs about one delay, not one per chunk: the delay of
// each chunk overlaps the others'.
func TestLatency(t *testing.T) {
	const rtt = 200 * time.Millisecond
	l := link(t, Config{Upstreams: []string{echo(t)}, RTT: rtt})
	testkit.Equal(t, l.RTT(), rtt, "RTT")
	c := dial(t, l)
	roundTrip(t, c, "warm", 10*time.Second) // the dial of the upstream is not the link's
	for range 3 {
		start := time.Now()
		roundTrip(t, c, "ping", 10*time.Second)
		took := time.Since(start)
		testkit.True(t, took >= rtt, "a round trip took %v, less than the RTT %v", took, rtt)
	}

	data := make([]byte, 2<<20) // at least 64 chunks: 6.4 s if each waited its own delay
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := c.Write(data); err != nil {
			t.Errorf("write: %v", err)
		}
	})
	testkit.OK(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err := io.ReadFull(c, make([]byte, len(data)))
	testkit.OK(t, err)
	wg.Wait()
	took := time.Since(start)
	chunks := l.Stats().Down.Chunks
	t.Logf("2 MiB echoed in %v over %d chunks each way at RTT %v", took, chunks, rtt)
	// Generous for a loaded machine, and still well under a delay per chunk.
	testkit.True(t, took < time.Duration(chunks)*rtt/4, "2 MiB took %v over %d chunks at RTT %v: the delays did not overlap", took, chunks, rtt)

	l.SetRTT(0)
	testkit.Equal(t, l.RTT(), time.Duration(0), "RTT after SetRTT(0)")
}

// TestCutDrop: a cut with Drop resets open connections and refuses new ones; Heal carries new
// connections again.
func TestCutDrop(t *testing.T) {
	l := link(t, Config{Upstreams: []string{echo(t)}})
	c := dial(t, l)
	roundTrip(t, c, "before", 10*time.Second)

	l.Cut(Drop)
	testkit.True(t, l.IsCut(), "IsCut after Cut")
	testkit.OK(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Read(make([]byte, 1))
	testkit.True(t, wasReset(err), "an open connection read %v after the cut, want a reset", err)
	testkit.Eventually(t, func() bool { return l.Stats().Open == 0 }, "no connection carried")

	refused := l.Stats().Refused
	// The listener accepts and the link resets at once: the dial itself or the first read
	// sees the reset, whichever the reset beats.
	c2, err := net.Dial("tcp", l.Addr())
	if err == nil {
		defer c2.Close()
		testkit.OK(t, c2.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = c2.Read(make([]byte, 1))
	}
	testkit.True(t, wasReset(err), "a new connection got %v while cut, want a reset", err)
	testkit.Eventually(t, func() bool { return l.Stats().Refused == refused+1 }, "the new connection counted refused")

	l.Heal()
	testkit.True(t, !l.IsCut(), "IsCut after Heal")
	roundTrip(t, dial(t, l), "after", 10*time.Second)
}

// wasReset tells whether a read ended with the connection closed under it (reset or EOF),
// not with data or its deadline.
func wasReset(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestCutHold: a cut with Hold keeps connections and the bytes sent meanwhile, delivers
// nothing until Heal, and then delivers them in order; a connection made while held is
// carried at Heal.
func TestCutHold(t *testing.T) {
	l := link(t, Config{Upstreams: []string{echo(t)}})
	c := dial(t, l)
	roundTrip(t, c, "before", 10*time.Second)
	testkit.Eventually(t, func() bool { st := l.Stats(); return st.Up.Bytes == 6 && st.Down.Bytes == 6 }, "the round trip counted")
	before := l.Stats()

	l.Cut(Hold)
	_, err := c.Write([]byte("held"))
	testkit.OK(t, err)
	testkit.Eventually(t, func() bool { return l.Stats().Queued == 4 }, "4 bytes held")
	c2 := dial(t, l)
	_, err = c2.Write([]byte("new"))
	testkit.OK(t, err)
	st := l.Stats()
	testkit.Equal(t, st.Up, before.Up, "traffic up while held")
	testkit.Equal(t, st.Open, int64(1), "connections carried while held (the new one waits)")

	l.Heal()
	testkit.OK(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	testkit.OK(t, err)
	testkit.Equal(t, string(got), "held", "held bytes after Heal")
	testkit.OK(t, c2.SetReadDeadline(time.Now().Add(10*time.Second)))
	got = make([]byte, 3)
	_, err = io.ReadFull(c2, got)
	testkit.OK(t, err)
	testkit.Equal(t, string(got), "new", "a connection made while held, after Heal")

	// Hold then Drop drops what is held.
	l.Cut(Hold)
	_, err = c.Write([]byte("lost"))
	testkit.OK(t, err)
	testkit.Eventually(t, func() bool { return l.Stats().Queued == 4 }, "4 bytes held")
	l.Cut(Drop)
	testkit.Eventually(t, func() bool { st := l.Stats(); return st.Open == 0 && st.Queued == 0 }, "held bytes dropped")
	l.Heal()
	roundTrip(t, dial(t, l), "again", 10*time.Second)
}

// TestUpstreamFailover: an upstream that refuses is skipped for the next one.
func TestUpstreamFailover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testkit.OK(t, err)
	dead := ln.Addr().String()
	ln.Close()
	l := link(t, Config{Upstreams: []string{dead, echo(t)}})
	roundTrip(t, dial(t, l), "second", 10*time.Second)
}

// TestConfig: what the link refuses to start with.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no upstream", Config{}, "no upstream"},
		{"listen off loopback", Config{Listen: "0.0.0.0:0", Upstreams: []string{"127.0.0.1:1"}}, "not a loopback address"},
		{"upstream off loopback", Config{Upstreams: []string{"192.0.2.1:4222"}}, "not a loopback address"},
		{"negative RTT", Config{Upstreams: []string{"127.0.0.1:1"}, RTT: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Listen(tc.cfg)
			if err == nil {
				l.Close()
				t.Fatal("started")
			}
			testkit.True(t, strings.Contains(err.Error(), tc.want), "error %q, want one saying %q", err, tc.want)
		})
	}
}
