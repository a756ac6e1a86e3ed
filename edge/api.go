package edge

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/weft-edge/weft/internal/bucket"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/protocol"
)

// handleAPI answers POST /api/<method>: the JSON body is the params, the answer is
// {"ok":true, ...result fields} or {"ok":false,"error":{...}}, Slack Web API style.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("method")
	if !protocol.APIMethodAllowed(w, r) {
		return
	}
	claims, ok := s.authenticate(w, r, token.FromHeader)
	if !ok {
		return
	}
	if ok, after := s.apiQuotas.take(claims.Team, claims.User, bucket.Now()); !ok {
		method := name
		if _, known := methods[name]; !known {
			method = "unknown" // a label per name a client makes up would grow without bound
		}
		s.metrics.requests.WithLabelValues(method, protocol.CodeRateLimited).Inc()
		writeError(w, http.StatusTooManyRequests, &protocol.Error{Code: protocol.CodeRateLimited, Message: "request rate over quota",
			RetryAfterMS: (max(after, time.Millisecond) + time.Millisecond - 1).Milliseconds()})
		return
	}
	if s.draining.Load() {
		w.Header().Set(protocol.HeaderRefused, "draining")
		writeError(w, http.StatusServiceUnavailable, &protocol.Error{Code: protocol.CodeOverloaded, Message: "draining",
			RetryAfterMS: s.jitter(s.cfg.DrainSpread).Milliseconds()})
		return
	}
	if _, known := methods[name]; !known {
		writeError(w, http.StatusNotFound, errorf(protocol.CodeUnknownMethod, "unknown method %q", truncate(name)))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxFrameBytes)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, errorf(protocol.CodeInvalidRequest, "reading body: %v", err))
		return
	}
	if len(body) > s.cfg.MaxFrameBytes {
		writeError(w, http.StatusRequestEntityTooLarge, errorf(protocol.CodeTooLarge, "body over %d bytes", s.cfg.MaxFrameBytes))
		return
	}
	team, err := s.teams.Get(r.Context(), claims.Team)
	if err != nil {
		status, e := s.teamError(err)
		writeError(w, status, e)
		return
	}
	if !s.member(w, team.Store(), claims) { // as /ws
		return
	}
	begin := time.Now()
	result, e := invoke(name, &call{ctx: r.Context(), team: claims.Team, user: claims.User, store: team.Store(), cursors: s.cursors, params: bytes.TrimSpace(body)})
	s.metrics.observe(name, e, time.Since(begin))
	if e != nil {
		writeError(w, statusOf(e.Code), e)
		return
	}
	// Splice the result object's fields after "ok":true.
	out := make([]byte, 0, len(result)+12)
	out = append(out, `{"ok":true`...)
	if len(result) > 2 {
		out = append(out, ',')
		out = append(out, result[1:]...)
	} else {
		out = append(out, '}')
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(out, '\n'))
}

func statusOf(code string) int {
	switch code {
	case protocol.CodeInvalidRequest:
		return http.StatusBadRequest
	case protocol.CodeNotFound, protocol.CodeUnknownMethod:
		return http.StatusNotFound
	case protocol.CodeInvalidAuth:
		return http.StatusUnauthorized
	case protocol.CodeAccountInactive:
		return http.StatusForbidden
	case protocol.CodeRateLimited:
		return http.StatusTooManyRequests
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeOverloaded, protocol.CodeOriginUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
