package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/weft-edge/weft/edge"
	"github.com/weft-edge/weft/internal/bucket"
)

// tunnel is one proxied WebSocket: the client's hijacked connection and the edge's.
type tunnel struct {
	client, edge net.Conn
	once         sync.Once
}

func (t *tunnel) close() {
	t.once.Do(func() {
		t.client.Close()
		t.edge.Close()
	})
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, edge.CodeOverloaded, "proxy shutting down", time.Second)
		return
	}
	if ok, after := s.connects.Admit(bucket.Now()); !ok {
		s.paced(w, "proxy_connects", http.StatusTooManyRequests, edge.CodeRateLimited, after)
		return
	}
	claims, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	s.route(w, claims.Team, func(node, addr, excluded string) (bool, string) {
		// Server-paced reconnects: an edge gets new connections at the pace it can take, and
		// none while it says it is not admitting; the rest are told when to come back.
		if a, ok := s.members.View().Edges[node]; ok && !a.Admitting {
			s.paced(w, "edge_not_admitting", http.StatusServiceUnavailable, edge.CodeOverloaded,
				time.Second+rand.N(2*time.Second))
			return false, ""
		}
		if ok, after := s.edgePacer(node).Admit(bucket.Now()); !ok {
			s.paced(w, "edge_paced", http.StatusTooManyRequests, edge.CodeRateLimited, after)
			return false, ""
		}
		return s.forwardWS(w, r, node, addr, excluded)
	})
}

// forwardWS sends the handshake to the edge at addr and, when it upgrades, joins the two
// connections. The proxy never parses a frame: after the edge's 101 it copies bytes.
//
// This is a hand-made splice rather than httputil.ReverseProxy, whose upgrade path copies with
// 32 KiB buffers per direction (64 KiB a connection); the kernel's splice(2), which io.Copy
// would pick between two TCP connections, holds a pipe (two more descriptors) per direction for
// the connection's life. Small buffers per direction cost 8 KiB and no descriptors.
func (s *Server) forwardWS(w http.ResponseWriter, r *http.Request, node, addr, excluded string) (refused bool, why string) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.DialTimeout)
	up, err := s.dialer.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		return true, "unreachable"
	}
	out := r.Clone(r.Context())
	out.URL = &url.URL{Scheme: "http", Host: addr, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	out.Host = addr
	out.RequestURI = ""
	out.Header.Del(edge.ExcludedHeader) // a client's own claim of which edges are down is not news
	if excluded != "" {
		out.Header.Set(edge.ExcludedHeader, excluded)
	}
	out.Header.Set("X-Forwarded-For", clientIP(r))
	up.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	br := bufio.NewReaderSize(up, 4<<10)
	if err := out.Write(up); err != nil {
		up.Close()
		return true, "unreachable"
	}
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		up.Close()
		// A reset before any answer is an edge that died or refuses; a timeout is an edge
		// too slow to answer a handshake, which the next owner may not be.
		return true, "no_answer"
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(edge.RefusedHeader) != "" {
		resp.Body.Close()
		up.Close()
		return true, "draining"
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
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
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(&head)
	head.WriteString("\r\n")
	// Bytes already read past the heads on either side go first: the edge writes its hello
	// right after the 101, often in the same segment.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		head.Write(b)
	}
	if _, err := cl.Write(head.Bytes()); err != nil {
		cl.Close()
		up.Close()
		return false, ""
	}
	if n := cbuf.Reader.Buffered(); n > 0 {
		b, _ := cbuf.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			cl.Close()
			up.Close()
			return false, ""
		}
	}
	t := &tunnel{client: cl, edge: up}
	s.tunnels.Store(t, struct{}{})
	s.metrics.connections.Inc()
	s.metrics.open.Inc()
	s.wg.Add(1) // the handler goroutine copies one way, a second goroutine the other
	if s.closing.Load() {
		t.close() // Shutdown ran its sweep before this tunnel was stored
	}
	go func() {
		defer s.wg.Done()
		pipe(cl, up, make([]byte, s.cfg.CopyBuffer))
		t.close()
	}()
	pipe(up, cl, make([]byte, s.cfg.CopyBuffer))
	t.close()
	s.tunnels.Delete(t)
	s.metrics.open.Dec()
	return false, ""
}

// pipe copies src to dst until either fails. It is io.CopyBuffer without the ReaderFrom and
// WriterTo shortcuts, which would take the splice path.
func pipe(dst io.Writer, src io.Reader, buf []byte) {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF, a reset, or the other side's close: all end the tunnel
			return
		}
	}
}

// hop-by-hop headers are the connection's, not the message's (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append(dst[k][:0:0], vs...)
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
}
