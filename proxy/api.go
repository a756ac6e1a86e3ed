package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"

	"github.com/weft-edge/weft/edge"
)

// handleAPI forwards POST /api/<method> to the owner of the caller's team. The body is read
// first (it is small, and bounded) so that a call an edge refused can go to the next owner:
// every method is a query, so sending it twice changes nothing.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, edge.CodeInvalidRequest, "reading the body: "+err.Error(), 0)
		return
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, edge.CodeTooLarge, "request body too large", 0)
		return
	}
	s.route(w, claims.Team, func(node, addr, excluded string) (bool, string) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method,
			(&url.URL{Scheme: "http", Host: addr, Path: r.URL.Path, RawQuery: r.URL.RawQuery}).String(),
			bytes.NewReader(body))
		if err != nil {
			writeError(w, http.StatusBadRequest, edge.CodeInvalidRequest, err.Error(), 0)
			return false, ""
		}
		copyHeader(out.Header, r.Header)
		out.Header.Del(edge.ExcludedHeader)
		if excluded != "" {
			out.Header.Set(edge.ExcludedHeader, excluded)
		}
		out.Header.Set("X-Forwarded-For", clientIP(r))
		resp, err := s.transport.RoundTrip(out)
		if err != nil {
			if r.Context().Err() != nil {
				return false, "" // the client went away
			}
			return true, "unreachable"
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(edge.RefusedHeader) != "" {
			return true, "draining"
		}
		copyHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return false, ""
	})
}
