package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/routesig"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
)

// handshakeBufs are the buffers a WebSocket handshake to an edge borrows: the request's
// writer and the response's reader, 4 KiB each, back in the pool once the tunnel starts (or the
// handshake fails). A reconnect storm sets up thousands of tunnels a second on a proxy, and
// 8 KiB of garbage each made its collector run that much more often, each run holding up
// the tunnels already open (measured: 50 of the 217 MB a proxy allocated setting up 7,500
// tunnels).
var handshakeBufs = sync.Pool{New: func() any {
	return &handshakeBuf{r: bufio.NewReaderSize(nil, 4<<10), w: bufio.NewWriterSize(nil, 4<<10)}
}}

type handshakeBuf struct {
	r *bufio.Reader
	w *bufio.Writer
}

// put drops the references to the connection and returns the buffers to the pool.
func (b *handshakeBuf) put() {
	b.r.Reset(nil)
	b.w.Reset(nil)
	handshakeBufs.Put(b)
}

// halfCloseLinger bounds how long a tunnel stays open after one side finished sending: long
// enough for the other side's last frames and close handshake.
const halfCloseLinger = 30 * time.Second

// tunnel is one proxied WebSocket: the client's hijacked connection and the edge's, and the
// two goroutines copying between them (owned by the Server's wg).
type tunnel struct {
	client, edge net.Conn
	once         sync.Once
	mu           sync.Mutex
	halfDone     bool
	left         atomic.Int32 // directions still copying
}

func (t *tunnel) close() {
	t.once.Do(func() {
		t.client.Close()
		t.edge.Close()
	})
}

// finished is called by a direction when its source ended: on EOF the destination is told (a
// half-close) and the other direction may finish within halfCloseLinger; on an error, or when
// both are done, the tunnel closes.
func (t *tunnel) finished(dst net.Conn, eof bool) {
	t.mu.Lock()
	both := t.halfDone
	t.halfDone = true
	t.mu.Unlock()
	if !eof || both {
		t.close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		deadline := time.Now().Add(halfCloseLinger)
		t.client.SetDeadline(deadline)
		t.edge.SetDeadline(deadline)
		return
	}
	t.close()
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	// Refused here as an edge would refuse it (docs/protocol.md section 2), before it costs a
	// connection slot or an edge's time.
	if e := protocol.CheckSubprotocol(r.Header); e != nil {
		s.metrics.refused.WithLabelValues("subprotocol").Inc()
		protocol.WriteError(w, http.StatusBadRequest, e)
		return
	}
	if s.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, protocol.CodeOverloaded, "proxy shutting down", time.Second)
		return
	}
	if ok, after := s.connects.Admit(bucket.Now()); !ok {
		s.paced(w, "proxy_connects", http.StatusTooManyRequests, protocol.CodeRateLimited, after)
		return
	}
	claims, ok := s.authenticate(w, r, token.FromRequest)
	clock := setupClockOf(r.Context())
	clock.mark(stageAuthed)
	if !ok {
		return
	}
	// An upgrade has no body (RFC 6455 section 4.1). One that claims a body would make the
	// handshake with the edge wait for bytes the client may never send, and the edge look
	// unreachable for it.
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		s.metrics.refused.WithLabelValues("body").Inc()
		writeError(w, http.StatusBadRequest, protocol.CodeInvalidRequest, "a WebSocket upgrade has no body", 0)
		return
	}
	s.route(w, r, claims.Team, func(node, addr, excluded string) (bool, string) {
		// Server-paced reconnects: an edge gets new connections at the pace it can take, and
		// none while it says it is not admitting; the rest are told when to come back.
		if a, ok := s.members.View().Edges[node]; ok && !a.Admitting {
			s.paced(w, "edge_not_admitting", http.StatusServiceUnavailable, protocol.CodeOverloaded,
				time.Second+rand.N(2*time.Second))
			return false, ""
		}
		if ok, after := s.edgePacer(node).Admit(bucket.Now()); !ok {
			s.paced(w, "edge_paced", http.StatusTooManyRequests, protocol.CodeRateLimited, after)
			return false, ""
		}
		clock.mark(stageRouted)
		begin := time.Now()
		refused, why := s.forwardWS(w, r, addr, excluded)
		s.metrics.handshake.Observe(time.Since(begin).Seconds())
		return refused, why
	})
}

// forwardWS sends the handshake to the edge at addr and, when it upgrades, joins the two
// connections. The proxy never parses a frame: after the edge's 101 it copies bytes.
//
// This is a hand-made splice rather than httputil.ReverseProxy, whose upgrade path copies with
// 32 KiB buffers per direction for the connection's life; the kernel's splice(2), which
// io.Copy would pick between two TCP connections, holds a pipe (two more descriptors) per
// direction. Here an idle tunnel holds no buffer at all (see pipe) and the handler returns, so
// a connection costs its two copying goroutines and the two sockets.
//
// refused is true only when the edge could not be connected to, or refused as draining: what
// says the edge, not the client, is the problem.
func (s *Server) forwardWS(w http.ResponseWriter, r *http.Request, addr, excluded string) (refused bool, why string) {
	clock := setupClockOf(r.Context())
	var (
		up       net.Conn
		hb       *handshakeBuf
		resp     *http.Response // nil when the edge switched (switched > 0)
		switched int            // the length of the edge's 101 head, buffered in hb.r
	)
	// A spare connection first (spares.go); one that fails before the edge answered was
	// closed by the edge or went stale, which says nothing of the edge: a fresh dial follows.
	for try := 0; ; try++ {
		spare := false
		if try == 0 {
			defer s.spares.refill(addr)
			up = s.spares.take(addr)
			spare = up != nil
		}
		if up == nil {
			var err error
			if up, err = s.dialEdge(addr); err != nil {
				return true, "unreachable"
			}
		}
		clock.mark(stageUpstream)
		if r.Context().Err() != nil {
			up.Close()
			return false, ""
		}
		up.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		hb = handshakeBufs.Get().(*handshakeBuf)
		hb.r.Reset(up)
		hb.w.Reset(up)
		if err := s.writeUpgrade(hb.w, r, addr, excluded); err != nil || hb.w.Flush() != nil {
			hb.put()
			up.Close()
			if spare {
				up = nil
				continue
			}
			return true, "unreachable"
		}
		var err error
		clock.mark(stageSent)
		if switched, err = switchedHead(hb.r); err == nil && switched == 0 {
			resp, err = http.ReadResponse(hb.r, r)
		}
		clock.mark(stageEdge)
		if err == nil {
			break
		}
		hb.put()
		up.Close()
		var ne net.Error
		if r.Context().Err() != nil {
			return false, ""
		}
		if errors.As(err, &ne) && ne.Timeout() {
			// A slow edge (a cold team loading) is not a dead one: this client is told to come
			// back, and the edge stays in the ring for everyone else.
			writeError(w, http.StatusGatewayTimeout, protocol.CodeOverloaded, "the edge did not answer in time", time.Second+rand.N(2*time.Second))
			return false, ""
		}
		if spare {
			up = nil
			continue
		}
		return true, "no_answer" // reset or closed before answering: it died or is dying
	}
	defer hb.put() // after the 101's leftovers were copied out of it, below
	br := hb.r
	// resp is nil in the common case, an upgrade taken without parsing (switchedHead): the
	// edge's 101 goes to the client as the edge wrote it, every header of it being the client's
	// business (Upgrade, Connection, Sec-WebSocket-Accept, the subprotocol).
	if resp != nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(protocol.HeaderRefused) != "" {
		resp.Body.Close()
		up.Close()
		return true, "draining"
	}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		// The edge's own refusal (401 for a user not in the team, 503 overloaded, …): the
		// client gets it as the edge said it.
		copyHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		up.Close()
		return false, ""
	}
	up.SetDeadline(time.Time{})
	cl, cbuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return false, ""
	}
	if pc, ok := cl.(*prefixConn); ok { // handed over by Upgrades, its prefix long read
		cl = pc.unwrapped()
	}
	cl = withRawIO(cl)
	// Bytes already read past the heads on either side go first: the edge writes its hello
	// right after the 101, often in the same segment.
	var head []byte
	if resp == nil {
		head, _ = br.Peek(br.Buffered()) // the 101 and what followed it, as the edge sent them
	} else {
		var b bytes.Buffer
		b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
		resp.Header.Write(&b)
		b.WriteString("\r\n")
		if n := br.Buffered(); n > 0 {
			rest, _ := br.Peek(n)
			b.Write(rest)
		}
		head = b.Bytes()
	}
	if _, err := cl.Write(head); err != nil {
		cl.Close()
		up.Close()
		return false, ""
	}
	clock.done()
	if n := cbuf.Reader.Buffered(); n > 0 {
		b, _ := cbuf.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			cl.Close()
			up.Close()
			return false, ""
		}
	}
	s.startTunnel(&tunnel{client: cl, edge: up})
	return false, ""
}

// switchedHead reads the edge's answer into br until it holds the whole head of a 101 and
// returns the head's length; 0 when the answer is anything else, or a head longer than br's
// buffer (http.ReadResponse then reads it from br, which has only been peeked at).
func switchedHead(br *bufio.Reader) (int, error) {
	const status = "HTTP/1.1 101 "
	for {
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, nil
			}
			return 0, err
		}
		b, _ := br.Peek(br.Buffered())
		if k := min(len(b), len(status)); string(b[:k]) != status[:k] {
			return 0, nil
		}
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 && len(b) >= len(status) {
			return i + 4, nil
		}
	}
}

// startTunnel registers t and starts its two directions; after Shutdown began it closes t
// instead (the check and the Add are under one lock, so Shutdown's Wait never races an Add).
// Both directions get goroutines of their own, fresh: the goroutine that served the request
// grew its stack reading and checking it, and copying on it held ~8 KiB more per idle tunnel
// (TestIdleProxiedConnMemory).
func (s *Server) startTunnel(t *tunnel) {
	s.tunnelMu.Lock()
	if s.closing.Load() {
		s.tunnelMu.Unlock()
		t.close()
		return
	}
	s.tunnels[t] = struct{}{}
	s.wg.Add(2)
	s.tunnelMu.Unlock()
	s.metrics.connections.Inc()
	s.metrics.open.Inc()
	t.left.Store(2)
	for _, dir := range [2][2]net.Conn{{t.edge, t.client}, {t.client, t.edge}} {
		go func() {
			defer s.wg.Done()
			t.finished(dir[0], pipe(dir[0], dir[1]))
			if t.left.Add(-1) == 0 { // the last direction out does the bookkeeping
				s.tunnelMu.Lock()
				delete(s.tunnels, t)
				s.tunnelMu.Unlock()
				s.metrics.open.Dec()
			}
		}()
	}
}

// writeUpgrade writes the request for the edge at addr of client request r: r's path, query
// and end-to-end headers, what the proxy says of the client (X-Forwarded-*, its region, the
// edges it found down), and the upgrade, the one hop-by-hop exchange that must go through. It
// is written here rather than by Request.Write over a clone of r: the clone, its header map's
// edits and Write's sorting were ~10 µs of a setup run cold (results/fronts).
func (s *Server) writeUpgrade(w *bufio.Writer, r *http.Request, addr, excluded string) error {
	w.WriteString("GET ")
	w.WriteString(r.URL.EscapedPath())
	if r.URL.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(r.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(addr)
	w.WriteString("\r\n")
	var named []string // the client's own hop-by-hop headers, named in its Connection (RFC 9110 section 7.6.1)
	for _, v := range r.Header["Connection"] {
		for n := range strings.SplitSeq(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				named = append(named, n)
			}
		}
	}
	for name, vs := range r.Header {
		if isHopHeader(name) || dropOnForward[name] || slices.ContainsFunc(named, func(n string) bool { return strings.EqualFold(n, name) }) {
			continue
		}
		for _, v := range vs {
			writeHeaderLine(w, name, v)
		}
	}
	writeHeaderLine(w, "X-Forwarded-For", clientIP(r))
	writeHeaderLine(w, "X-Forwarded-Host", r.Host)
	writeHeaderLine(w, "X-Forwarded-Proto", s.clientProto(r))
	if excluded != "" {
		writeHeaderLine(w, protocol.HeaderExcluded, excluded)
	}
	writeHeaderLine(w, protocol.HeaderRegion, s.cfg.Region) // the client's region, whatever it says
	writeHeaderLine(w, protocol.HeaderRouted, s.signRoute(r, excluded))
	writeHeaderLine(w, "Connection", "Upgrade")
	writeHeaderLine(w, "Upgrade", r.Header.Get("Upgrade"))
	_, err := w.WriteString("\r\n")
	return err
}

// signRoute is the signature of the routing headers the proxy sends with r to an edge
// (protocol.HeaderRouted, internal/routesig).
func (s *Server) signRoute(r *http.Request, excluded string) string {
	tok, _ := token.FromRequest(r)
	return s.routes.Sign(time.Now(), routesig.Route{Path: r.URL.Path, Token: tok, Excluded: excluded, Region: s.cfg.Region})
}

// dropOnForward are the end-to-end headers the proxy writes itself: a client's own
// X-Forwarded-* or claim of which edges are down or of its region (or a signature of those)
// is not news.
var dropOnForward = map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Host": true,
	"X-Forwarded-Proto": true, protocol.HeaderExcluded: true, protocol.HeaderRegion: true, protocol.HeaderRouted: true}

func isHopHeader(name string) bool {
	for _, h := range hopHeaders {
		if name == h {
			return true
		}
	}
	return false
}

// writeHeaderLine writes one header line, with any CR or LF in the value made a space as
// Header.Write does (a parsed request has none; the proxy never lets one split a line).
func writeHeaderLine(w *bufio.Writer, name, v string) {
	w.WriteString(name)
	w.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	w.WriteString(v)
	w.WriteString("\r\n")
}

// forwardHeaders drops the hop-by-hop headers of r (RFC 9110 section 7.6.1, and those its
// Connection header names) from h and says who the client asked for.
func forwardHeaders(h http.Header, r *http.Request, proto string) {
	for _, v := range r.Header.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	h.Set("X-Forwarded-For", clientIP(r))
	h.Set("X-Forwarded-Host", r.Host)
	h.Set("X-Forwarded-Proto", proto)
}

// clientProto is the scheme the client reached the proxy with. r.TLS is nil on both of the
// proxy's paths (a head read by Upgrades, a connection handed to net/http wrapped), so the
// listener's configuration says it.
func (s *Server) clientProto(r *http.Request) string {
	if r.TLS != nil || s.cfg.ServesTLS {
		return "https"
	}
	return "http"
}

// hop-by-hop headers are the connection's, not the message's (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append(dst[k][:0:0], vs...)
	}
	for _, v := range src.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			dst.Del(strings.TrimSpace(name))
		}
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
}
