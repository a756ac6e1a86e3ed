package pubsub

import "github.com/weft-edge/weft/origin"

// Handler receives one team's events from a [TeamSub].
//
// Event is called in seq order, exactly once per seq, from one goroutine per subscription,
// never concurrently. The event is the handler's to keep; the subscription does not touch it
// again. A slow handler delays only its own team: its live messages wait in a bounded buffer,
// and what overflows is read back from JetStream afterwards.
//
// Lost is called at most once, when a gap can no longer be filled from JetStream (the error
// wraps [ErrGapUnfillable]). After Lost the subscription delivers nothing more; the consumer
// should reload the team from the origin with a new subscription.
//
// Both may call the subscription's Close (it then returns at once and nothing more is
// delivered); neither may call [Bus.Close].
type Handler interface {
	Event(ev *origin.Event)
	Lost(err error)
}

// HandlerFuncs adapts two functions to a Handler. A nil Lost ignores the loss.
type HandlerFuncs struct {
	OnEvent func(ev *origin.Event)
	OnLost  func(err error)
}

// Event calls OnEvent.
func (h HandlerFuncs) Event(ev *origin.Event) { h.OnEvent(ev) }

// Lost calls OnLost when set.
func (h HandlerFuncs) Lost(err error) {
	if h.OnLost != nil {
		h.OnLost(err)
	}
}
