package edge

import (
	"errors"
	"fmt"

	"github.com/gobwas/ws"

	"github.com/weft-edge/weft/protocol"
)

// endReason is why a session ended. Each session records exactly one: the first thing that
// decided its end (a later failure caused by the same end, like the reader's error once the
// connection is closed, does not overwrite it). Server.endSession counts it in
// weft_edge_sessions_ended_total{reason}.
//
// The reasons the server decides on (slow_consumer … account_inactive) say goodbye first (goodbyeOf);
// the others are found out: the client went, or a read or write failed or timed out.
type endReason uint8

const (
	endUnknown         endReason = iota // none recorded yet
	endClientClosed                     // the client sent a close frame
	endReadError                        // reading failed without a close frame: reset, EOF, bad framing
	endTooLarge                         // a frame over the hard read limit (16 × MaxFrameBytes)
	endIdle                             // nothing read for IdleTimeout
	endWriteTimeout                     // a write outlived WriteTimeout: the client stopped reading
	endWriteError                       // a write failed: the connection is gone
	endSlowConsumer                     // the outbound queue passed its bound
	endPolicy                           // too many protocol errors (PolicyStrikes)
	endMoved                            // the team is served by another edge now
	endDraining                         // the node is shutting down or handing its teams over
	endReload                           // the team reloaded after losing events: resume to learn what was missed
	endTokenExpired                     // the session's token expired
	endAccountInactive                  // the user was deactivated
	numEndReasons
)

var endNames = [numEndReasons]string{
	endUnknown:         "unknown",
	endClientClosed:    "client_closed",
	endReadError:       "read_error",
	endTooLarge:        "too_large",
	endIdle:            "idle",
	endWriteTimeout:    "write_timeout",
	endWriteError:      "write_error",
	endSlowConsumer:    "slow_consumer",
	endPolicy:          "policy",
	endMoved:           "moved",
	endDraining:        "draining",
	endReload:          "reload",
	endTokenExpired:    "token_expired",
	endAccountInactive: "account_inactive",
}

// String is the reason's label in weft_edge_sessions_ended_total.
func (r endReason) String() string {
	if r < numEndReasons {
		return endNames[r]
	}
	return fmt.Sprintf("endReason(%d)", uint8(r))
}

// goodbyeOf is the goodbye frame's reason and the close code for an end the server decides on
// (docs/protocol.md section 3); ok is false for the others, which end without a goodbye.
func goodbyeOf(r endReason) (reason string, code ws.StatusCode, ok bool) {
	switch r {
	case endSlowConsumer:
		return protocol.ReasonSlowConsumer, protocol.CloseSlowConsumer, true
	case endPolicy:
		return protocol.ReasonPolicy, ws.StatusPolicyViolation, true
	case endMoved:
		return protocol.ReasonMoved, protocol.CloseMoved, true
	case endTokenExpired:
		return protocol.ReasonTokenExpired, protocol.CloseTokenExpired, true
	case endAccountInactive:
		return protocol.ReasonAccountInactive, protocol.CloseAccountInactive, true
	case endDraining, endReload:
		// A reload is a draining to the client: reconnect and resume.
		return protocol.ReasonDraining, ws.StatusGoingAway, true
	}
	return "", 0, false
}

// readEnd is the end a read error means, when nothing else ended the session first.
func readEnd(err error) endReason {
	switch {
	case errors.Is(err, errClientClosed):
		return endClientClosed
	case errors.Is(err, errMessageLimit):
		return endTooLarge
	}
	return endReadError
}

// endWith records why the session ends, unless something else already did, and stops it.
func (s *session) endWith(r endReason) {
	s.ended.CompareAndSwap(uint32(endUnknown), uint32(r))
	s.stop()
}

// readEnded records what the error that ended readLoop means, unless something else ended
// the session first (then the read failed because of that end, and says nothing new).
func (s *session) readEnded(err error) {
	if err != nil {
		s.ended.CompareAndSwap(uint32(endUnknown), uint32(readEnd(err)))
	}
}

// endReason is what the session recorded; endUnknown while it runs.
func (s *session) endReason() endReason { return endReason(s.ended.Load()) }
