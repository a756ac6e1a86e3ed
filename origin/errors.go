package origin

import (
	"errors"
	"fmt"
)

// The kinds of origin failure. Every error the Client returns wraps exactly one of them, so a
// caller can tell "the team does not exist" from "the origin is sick" with errors.Is.
var (
	// ErrNotFound: the team or object does not exist (HTTP 404). Not a failure of the origin.
	ErrNotFound = errors.New("origin: not found")
	// ErrUnavailable: the origin answered 5xx, refused or dropped the connection, or a Guard
	// (the circuit breaker) refused the call without trying.
	ErrUnavailable = errors.New("origin: unavailable")
	// ErrTimeout: the call ran out of time.
	ErrTimeout = errors.New("origin: timeout")
	// ErrBadResponse: the origin answered something weft cannot use (malformed JSON, an object
	// of another team, a bad version, an oversized or endless listing). Nothing of it is applied.
	ErrBadResponse = errors.New("origin: bad response")
	// ErrRejected: the origin refused the request itself (401/403/400): a configuration problem.
	ErrRejected = errors.New("origin: request rejected")
)

// Error is what every Client call returns on failure.
type Error struct {
	Op     string // "team", "users", "channels", "memberships", "user", "channel"
	Team   string
	Status int   // HTTP status, 0 when there was no response
	Kind   error // one of the sentinel errors above
	Err    error // the underlying cause, may be nil
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%v: %s %s", e.Kind, e.Op, e.Team)
	if e.Status != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match both the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// IsFailure reports whether err says the origin is unhealthy (unavailable or timing out), as
// opposed to a healthy answer such as "not found". Circuit breakers count only these.
func IsFailure(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout)
}
