package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// cheapConn is a client session as cheap as a client can be, so that when clients share the
// machine with the server (10,000 of them on 2 cores), the floor of a delivery's latency is the
// server's cost, not theirs: it reads frames, finds the publish stamp in an event, and decodes
// nothing else. It speaks weft.v1 (protoWeft) or the centrifuge client protocol in JSON
// (protoCentrifuge), the bigteam scenario's peer, and keeps either alive (weft: a ping request
// every heartbeat; centrifuge: answering the server's pings).
//
// One goroutine reads (read); sends are serialised by wmu, from any goroutine.
type cheapConn struct {
	proto     string
	conn      net.Conn
	br        *bufio.Reader
	buf       []byte // the frame being read
	heartbeat time.Duration
	node      string // the hello's: the edge that serves the session

	wmu    sync.Mutex
	nextID atomic.Int64

	// A probe: one request at a time, its id and send time (unix ns); 0 when none is out.
	probeID, probeAt atomic.Int64
}

const (
	protoWeft       = "weft"
	protoCentrifuge = "centrifuge"
)

// cheapFrameLimit is the largest frame a cheap client accepts.
const cheapFrameLimit = 1 << 20

// dialCheap opens a session: weft's hello read, or centrifuge's connect answered.
func dialCheap(ctx context.Context, proto, url, tok string) (*cheapConn, error) {
	d := ws.Dialer{Timeout: 30 * time.Second}
	switch proto {
	case protoWeft:
		d.Protocols = []string{Protocol}
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + tok}})
	case protoCentrifuge:
	default:
		return nil, fmt.Errorf("loadtest: protocol %q: want weft or centrifuge", proto)
	}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("loadtest: dial %s: %w", url, err)
	}
	c := &cheapConn{proto: proto, conn: conn}
	var src io.Reader = conn
	if br != nil { // frames that came with the handshake: read them first
		src = io.MultiReader(bytes.NewReader(peekAll(br)), conn)
		ws.PutReader(br)
	}
	c.br = bufio.NewReaderSize(src, 4096)
	if err := c.start(ctx, tok); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func peekAll(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return bytes.Clone(b)
}

// start reads the hello (weft) or sends connect and reads its reply (centrifuge), bounded by ctx.
func (c *cheapConn) start(ctx context.Context, tok string) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetReadDeadline(dl)
		defer c.conn.SetReadDeadline(time.Time{})
	}
	if c.proto == protoCentrifuge {
		connect, _ := json.Marshal(map[string]any{"id": c.nextID.Add(1), "connect": map[string]string{"token": tok}})
		if err := c.send(connect); err != nil {
			return err
		}
	}
	f, err := c.next()
	if err != nil {
		return fmt.Errorf("loadtest: reading the first frame: %w", err)
	}
	switch c.proto {
	case protoWeft:
		var h struct {
			Type        string `json:"type"`
			HeartbeatMS int64  `json:"heartbeat_ms"`
			Node        string `json:"node"`
		}
		if json.Unmarshal(f, &h) != nil || h.Type != "hello" {
			return fmt.Errorf("loadtest: first frame %.200q is not a hello", f)
		}
		c.heartbeat = time.Duration(h.HeartbeatMS) * time.Millisecond
		c.node = h.Node
	case protoCentrifuge:
		if !bytes.HasPrefix(f, []byte(`{"id":1,"connect":`)) {
			return fmt.Errorf("loadtest: centrifuge connect: %.200q", f)
		}
	}
	return nil
}

// next reads one data frame (a message: fragments joined), answering pings on the way; a
// close frame is an error.
func (c *cheapConn) next() ([]byte, error) {
	c.buf = c.buf[:0]
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return nil, err
		}
		if h.Length > cheapFrameLimit || int64(len(c.buf))+h.Length > cheapFrameLimit {
			return nil, fmt.Errorf("loadtest: a frame over %d bytes", cheapFrameLimit)
		}
		at := len(c.buf)
		c.buf = slices.Grow(c.buf, int(h.Length))[:at+int(h.Length)]
		if _, err := io.ReadFull(c.br, c.buf[at:]); err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(c.buf[at:], h.Mask, 0)
		}
		switch {
		case h.OpCode == ws.OpClose:
			code, reason := ws.ParseCloseFrameData(c.buf[at:])
			return nil, fmt.Errorf("loadtest: closed by the server: %d %s", code, reason)
		case h.OpCode == ws.OpPing:
			p := bytes.Clone(c.buf[at:])
			c.buf = c.buf[:at]
			c.wmu.Lock()
			err := wsutil.WriteClientMessage(c.conn, ws.OpPong, p)
			c.wmu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		case h.OpCode == ws.OpPong:
			c.buf = c.buf[:at]
			continue
		}
		if h.Fin {
			return c.buf, nil
		}
	}
}

// send writes one text frame.
func (c *cheapConn) send(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return wsutil.WriteClientMessage(c.conn, ws.OpText, p)
}

// ping keeps a weft session alive (docs/protocol.md, heartbeats); centrifuge's server pings.
func (c *cheapConn) ping() error {
	if c.proto != protoWeft {
		return nil
	}
	return c.send(fmt.Appendf(nil, `{"id":%d,"method":"ping"}`, c.nextID.Add(1)))
}

// probe sends users.info about user unless a probe is out.
func (c *cheapConn) probe(user string) error {
	if c.probeID.Load() != 0 {
		return nil
	}
	id := c.nextID.Add(1)
	var req []byte
	if c.proto == protoWeft {
		req = fmt.Appendf(nil, `{"id":%d,"method":"users.info","params":{"users":[%q]}}`, id, user)
	} else {
		req = fmt.Appendf(nil, `{"id":%d,"rpc":{"method":"users.info","data":{"users":[%q]}}}`, id, user)
	}
	c.probeAt.Store(time.Now().UnixNano())
	c.probeID.Store(id)
	return c.send(req)
}

// cheapSink is what a cheap client's reader reports to: the events it got and their publish
// stamps, and its probes' round trips.
type cheapSink interface {
	event(stamp int64, at time.Time) // stamp 0: an event without one
	probed(rtt time.Duration)
}

var (
	weftEventPrefix   = []byte(`{"type":"event"`)
	weftReplyPrefix   = []byte(`{"type":"reply","id":`)
	weftGoodbyePrefix = []byte(`{"type":"goodbye"`)
	centPushPrefix    = []byte(`{"push":`)
	centReplyPrefix   = []byte(`{"id":`)
	stampKey          = []byte(`"` + timedPrefix)
	errGoodbye        = errors.New("loadtest: goodbye")
)

// read reads frames until the connection ends, reporting to sink.
func (c *cheapConn) read(sink cheapSink) error {
	for {
		f, err := c.next()
		if err != nil {
			return err
		}
		at := time.Now()
		if c.proto == protoWeft {
			if err := c.weftFrame(f, at, sink); err != nil {
				return err
			}
			continue
		}
		// The centrifuge protocol packs several messages into a frame, one per line.
		for len(f) > 0 {
			msg := f
			if i := bytes.IndexByte(f, '\n'); i >= 0 {
				msg, f = f[:i], f[i+1:]
			} else {
				f = nil
			}
			if err := c.centrifugeMessage(msg, at, sink); err != nil {
				return err
			}
		}
	}
}

func (c *cheapConn) weftFrame(f []byte, at time.Time, sink cheapSink) error {
	switch {
	case bytes.HasPrefix(f, weftEventPrefix):
		sink.event(stampOf(f), at)
	case bytes.HasPrefix(f, weftReplyPrefix):
		c.replied(f[len(weftReplyPrefix):], at, sink)
	case bytes.HasPrefix(f, weftGoodbyePrefix):
		return fmt.Errorf("%w: %.200s", errGoodbye, f)
	}
	return nil
}

func (c *cheapConn) centrifugeMessage(m []byte, at time.Time, sink cheapSink) error {
	switch {
	case bytes.HasPrefix(m, centPushPrefix):
		if bytes.Contains(m, []byte(`"disconnect":`)) {
			return fmt.Errorf("%w: %.200s", errGoodbye, m)
		}
		sink.event(stampOf(m), at)
	case bytes.Equal(m, []byte("{}")): // the server's ping: a pong is due
		return c.send([]byte("{}"))
	case bytes.HasPrefix(m, centReplyPrefix):
		c.replied(m[len(centReplyPrefix):], at, sink)
	}
	return nil
}

// replied notes the reply whose id starts rest, if it answers the probe out.
func (c *cheapConn) replied(rest []byte, at time.Time, sink cheapSink) {
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	id, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil || id != c.probeID.Load() {
		return
	}
	sink.probed(at.Sub(time.Unix(0, c.probeAt.Load())))
	c.probeID.Store(0)
}

// stampOf finds the publish time (unix ns) a stamped event carries, 0 when it has none.
func stampOf(f []byte) int64 {
	i := bytes.Index(f, stampKey)
	if i < 0 {
		return 0
	}
	var ns int64
	for _, b := range f[i+len(stampKey):] {
		if b < '0' || b > '9' {
			break
		}
		ns = ns*10 + int64(b-'0')
	}
	return ns
}

func (c *cheapConn) close() { _ = c.conn.Close() }
