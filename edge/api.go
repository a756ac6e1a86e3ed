package edge

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// handleAPI answers POST /api/<method>: the JSON body is the params, the answer is
// {"ok":true, ...result fields} or {"ok":false,"error":{...}}, Slack Web API style.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("method")
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, errorf(CodeInvalidRequest, "use POST with a JSON body"))
		return
	}
	claims, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if s.draining.Load() {
		w.Header().Set(RefusedHeader, "draining")
		writeError(w, http.StatusServiceUnavailable, &Error{Code: CodeOverloaded, Message: "draining",
			RetryAfterMS: s.jitter(s.cfg.DrainSpread).Milliseconds()})
		return
	}
	if _, known := methods[name]; !known {
		writeError(w, http.StatusNotFound, errorf(CodeUnknownMethod, "unknown method %q", truncate(name)))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxFrameBytes)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, errorf(CodeInvalidRequest, "reading body: %v", err))
		return
	}
	if len(body) > s.cfg.MaxFrameBytes {
		writeError(w, http.StatusRequestEntityTooLarge, errorf(CodeTooLarge, "body over %d bytes", s.cfg.MaxFrameBytes))
		return
	}
	team, err := s.teams.Get(r.Context(), claims.Team)
	if err != nil {
		status, e := s.teamError(err)
		writeError(w, status, e)
		return
	}
	if _, ok := team.Store().User(claims.User); !ok { // as /ws: a token for a user the team lacks
		writeError(w, http.StatusUnauthorized, errorf(CodeInvalidAuth, "user %s is not in team %s", claims.User, claims.Team))
		return
	}
	begin := time.Now()
	result, e := invoke(name, &call{ctx: r.Context(), user: claims.User, store: team.Store(), params: bytes.TrimSpace(body)})
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
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeNotFound, CodeUnknownMethod:
		return http.StatusNotFound
	case CodeInvalidAuth:
		return http.StatusUnauthorized
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeOverloaded, CodeOriginUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
