package reference

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/weft-edge/weft/internal/sleep"
)

// Faults make the origin misbehave on purpose, so tests and demos can show weft staying up when
// its origin is slow, failing or gone. The zero value is a healthy origin. Faults apply to the
// origin contract's endpoints, never to /origin/admin/, so a demo can always switch them off.
type Faults struct {
	// Latency delays every answer. A request whose context ends first gets no answer at all.
	Latency time.Duration
	// ErrorRate is the share of requests, in [0, 1], answered 500 {"error":"injected_fault"}.
	ErrorRate float64
	// Down closes every connection without an HTTP response, like an unreachable origin.
	Down bool
}

// faultsJSON is the admin endpoint's shape: latency is a duration string such as "200ms".
type faultsJSON struct {
	Latency   string  `json:"latency"`
	ErrorRate float64 `json:"error_rate"`
	Down      bool    `json:"down"`
}

// MarshalJSON writes {"latency":"200ms","error_rate":0.1,"down":false}.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{Latency: f.Latency.String(), ErrorRate: f.ErrorRate, Down: f.Down})
}

// UnmarshalJSON reads the shape MarshalJSON writes; a missing or empty latency is none.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*f = Faults{ErrorRate: j.ErrorRate, Down: j.Down}
	if j.Latency != "" {
		d, err := time.ParseDuration(j.Latency)
		if err != nil {
			return fmt.Errorf("origin: faults latency: %w", err)
		}
		f.Latency = d
	}
	return nil
}

// Validate checks that the latency is not negative and the error rate is within [0, 1].
func (f Faults) Validate() error {
	if f.Latency < 0 {
		return fmt.Errorf("origin: negative fault latency %v", f.Latency)
	}
	if math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("origin: fault error rate %v outside [0, 1]", f.ErrorRate)
	}
	return nil
}

// SetFaults replaces the faults in force; it is safe for concurrent use with requests. Out of
// range values are clamped (see Validate).
func (s *Server) SetFaults(f Faults) {
	f.Latency = max(f.Latency, 0)
	if math.IsNaN(f.ErrorRate) {
		f.ErrorRate = 0
	}
	f.ErrorRate = min(max(f.ErrorRate, 0), 1)
	s.faults.Store(&f)
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults { return *s.faults.Load() }

// injectFaults applies the faults to one request and reports whether to serve it.
func (s *Server) injectFaults(w http.ResponseWriter, r *http.Request) bool {
	f := s.faults.Load()
	if f.Down {
		dropConnection(w)
		return false
	}
	if f.Latency > 0 && sleep.For(r.Context(), f.Latency) != nil {
		return false // the caller gave up waiting
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		writeError(w, http.StatusInternalServerError, "injected_fault")
		return false
	}
	return true
}

// dropConnection closes the connection under a request without answering it. When the
// connection cannot be hijacked (HTTP/2), aborting the handler resets the stream instead.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func (s *Server) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	body, _ := json.Marshal(s.Faults())
	writeJSON(w, body)
}

// handleSetFaults replaces the faults with the JSON body and answers the faults now in force.
func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	data, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err == nil {
		err = json.Unmarshal(data, &f)
	}
	if err == nil {
		err = f.Validate()
	}
	if err != nil {
		s.log.Debug("origin: bad faults request", "err", err)
		writeError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	s.SetFaults(f)
	s.log.Info("origin: faults set", "latency", f.Latency, "error_rate", f.ErrorRate, "down", f.Down)
	s.handleGetFaults(w, r)
}
