package pubsub

import (
	"errors"
	"fmt"
)

var (
	// ErrTooOld says that the stream no longer holds an event a replay needs (its limits dropped
	// it, or it was never stored). The caller falls back to a full load.
	ErrTooOld = errors.New("pubsub: events no longer held by the stream")

	// ErrGapUnfillable is what a [Handler]'s Lost gets when a gap in a team's events cannot be
	// filled from the stream.
	ErrGapUnfillable = errors.New("pubsub: gap cannot be filled from the stream")

	// ErrClosed is returned by calls on a closed Bus.
	ErrClosed = errors.New("pubsub: bus closed")
)

// missingError says that the stream lacks team seq Seq: the first event it holds after it is
// Found (0 when the stream holds nothing at or after Seq but does hold later sequence numbers of
// the team, which seek reports differently). Callers wrap it in ErrTooOld or ErrGapUnfillable.
type missingError struct {
	Team  string
	Seq   int64
	Found int64
}

func (e *missingError) Error() string {
	return fmt.Sprintf("team %s seq %d is not in the stream (it continues at seq %d)", e.Team, e.Seq, e.Found)
}

// errNotStored says that the stream holds nothing of the team at or after a seq yet: not a loss,
// the event has not been published or not reached this replica.
var errNotStored = errors.New("pubsub: not stored yet")
