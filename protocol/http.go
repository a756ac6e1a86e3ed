package protocol

import (
	"net/http"
	"strings"
)

// CheckSubprotocol reads the subprotocols a WebSocket handshake offers and returns the error to
// refuse it with (HTTP 400), or nil when the server may go on and speak weft.v1: the client
// offered Subprotocol among others, or offered none at all (section 2). A client that offers
// only other subprotocols speaks something else, and talking weft.v1 to it would fail later
// and less clearly.
func CheckSubprotocol(h http.Header) *Error {
	offered := false
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			switch strings.TrimSpace(p) {
			case Subprotocol:
				return nil
			case "":
			default:
				offered = true
			}
		}
	}
	if !offered {
		return nil
	}
	return Errorf(CodeInvalidRequest, "the only WebSocket subprotocol served is %s: offer it, or none", Subprotocol)
}

// APIMethodAllowed reports whether r may call /api/<method>: only POST may (section 2), since
// the params are its JSON body. Any other method it has answered with 405, Allow: POST and an
// invalid_request error, and the caller stops there.
func APIMethodAllowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", http.MethodPost)
	WriteError(w, http.StatusMethodNotAllowed,
		Errorf(CodeInvalidRequest, "%s /api/<method> is not served: use POST with a JSON body", r.Method))
	return false
}
