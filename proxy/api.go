package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
)

// handleAPI forwards POST /api/<method> to the owner of the caller's team. The body is read
// first (it is small, and bounded) so that a call an edge refused can go to the next owner:
// every method is a query, so sending it twice changes nothing.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	if !protocol.APIMethodAllowed(w, r) { // answered here as an edge would: nothing to route
		s.metrics.refused.WithLabelValues("method_not_allowed").Inc()
		return
	}
	claims, ok := s.authenticate(w, r, token.FromHeader)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeInvalidRequest, "reading the body: "+err.Error(), 0)
		return
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, "request body too large", 0)
		return
	}
	s.route(w, r, claims.Team, func(node, addr, excluded string) (bool, string) {
		out, err := http.NewRequestWithContext(r.Context(), http.MethodPost,
			(&url.URL{Scheme: s.edgeScheme(), Host: addr, Path: r.URL.Path, RawQuery: r.URL.RawQuery}).String(),
			bytes.NewReader(body))
		if err != nil {
			writeError(w, http.StatusBadRequest, protocol.CodeInvalidRequest, err.Error(), 0)
			return false, ""
		}
		out.Header = r.Header.Clone()
		forwardHeaders(out.Header, r, s.clientProto(r)) // drops the hop-by-hop ones, says who asked
		out.Header.Del(protocol.HeaderExcluded)
		if excluded != "" {
			out.Header.Set(protocol.HeaderExcluded, excluded)
		}
		out.Header.Set(protocol.HeaderRegion, s.cfg.Region)
		out.Header.Set(protocol.HeaderRouted, s.signRoute(r, excluded))
		resp, err := s.transport.RoundTrip(out)
		if err != nil {
			if r.Context().Err() != nil {
				return false, "" // the client went away
			}
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				return true, "unreachable"
			}
			// Sent, then the connection failed: one broken call does not make the edge down.
			writeError(w, http.StatusBadGateway, protocol.CodeOverloaded, "the edge failed to answer", time.Second)
			return false, ""
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(protocol.HeaderRefused) != "" {
			return true, "draining"
		}
		copyHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return false, ""
	})
}
