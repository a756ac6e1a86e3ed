package edge

import (
	"strconv"
	"unicode/utf8"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// Events over MaxEventBytes: sent cut, never dropped.
//
// One event's frame is written whole to every session it goes to, so a single 1 MiB event to
// 10,000 sessions queues 10 GB of writes, and a burst of them makes readers that keep up look
// like slow consumers. Dropping the event would leave a hole in every session's stream (seqs
// are contiguous; a client treats a hole as lost events). So an event whose frame is over the
// bound goes out cut, marked "cut":"too_large" in the frame: a message keeps the head of its
// text that fits; an event carrying an object (user_change, channel_created, channel_change,
// team_change) carries the object's ID instead, and the client asks for the object when it
// needs it (users.info, channels.info, boot: the edge's store has it whole). The store is
// applied the whole event either way; only what is sent is cut.

const cutTooLarge = protocol.CutTooLarge

// eventAnnotator is the annotator of ev's frame bounded by max (boundedEventFrame). A cut
// event carries none of its objects, so its recipients are not recorded as having them: the
// next event that names one annotates it (jit.go), as for a client that never had it.
func eventAnnotator(st *cache.Store, ev *origin.Event, max int, m *metrics, mode AnnotateMode) *annotator {
	base, cut := boundedEventFrame(ev, max, m)
	a := newAnnotator(st, ev, base, mode)
	if cut {
		a.carried = nil
	}
	return a
}

// boundedEventFrame is ev's event frame, or its cut form's when the frame is over max bytes
// (max ≤ 0: no bound), counted in m by the event's type; cut says which.
func boundedEventFrame(ev *origin.Event, max int, m *metrics) (frame []byte, cut bool) {
	f := eventFrame(ev)
	if max <= 0 || len(f) <= max {
		return f, false
	}
	c := cutEvent(ev, max)
	body, err := c.MarshalJSON()
	if err != nil { // ev itself was encoded just now: not expected; send it whole
		return f, false
	}
	if m != nil {
		m.eventsCut.WithLabelValues(ev.Type, cutTooLarge).Inc()
	}
	b := make([]byte, 0, len(body)+64)
	b = append(b, `{"type":"event","seq":`...)
	b = strconv.AppendInt(b, ev.Seq, 10)
	b = append(b, `,"cut":"`+cutTooLarge+`","event":`...)
	b = append(b, body...)
	return append(b, '}'), true
}

// cutEvent is ev with what makes it large taken out: objects replaced by their IDs, the text
// cut to what fits in about half of max (at a rune boundary), and when even that is over max
// (a message mentioning thousands), the text and mentions gone.
func cutEvent(ev *origin.Event, max int) *origin.Event {
	c := *ev
	switch {
	case c.User != nil:
		c.UserID, c.User = c.User.ID, nil
	case c.Channel != nil:
		c.ChannelID, c.Channel = c.Channel.ID, nil
	}
	if c.TeamInfo != nil {
		c.Team, c.TeamInfo = c.TeamInfo.ID, nil
	}
	c.Text = truncateUTF8(c.Text, max/2)
	if body, err := c.MarshalJSON(); err == nil && len(body)+64 > max {
		c.Text, c.Mentions = "", nil
	}
	return &c
}

// truncateUTF8 is s cut to at most n bytes, not inside a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
