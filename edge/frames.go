package edge

import (
	"encoding/json"
	"time"

	"github.com/weft-edge/weft/protocol"
)

// The wire vocabulary (frames, error codes, goodbye reasons, close codes) is package protocol's;
// this file only holds the edge's shorthands for it.

func errorf(code, format string, args ...any) *protocol.Error {
	return protocol.Errorf(code, format, args...)
}

func goodbyeFrame(reason string, after time.Duration) []byte {
	b, _ := json.Marshal(protocol.Goodbye{Type: protocol.FrameGoodbye, Reason: reason, ReconnectAfterMS: after.Milliseconds()})
	return b
}
