package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// TestEventsOverTheBoundAreCut (issue 20): with MaxEventBytes at 8 KiB, a message of 20 KiB
// arrives cut to the head of its text that fits, and a user_change whose user carries a 20 KiB
// title arrives with the user's ID instead of the user, both marked cut too_large and counted;
// an event under the bound arrives whole. The seqs stay contiguous (nothing is dropped), the
// edge's store keeps the whole user (users.info answers it), and a resume replays the same
// cut frames.
func TestEventsOverTheBoundAreCut(t *testing.T) {
	const bound = 8 << 10
	h := newHarness(t, harnessOpts{edge: func(c *Config) { c.MaxEventBytes = bound }})
	ctx := context.Background()
	team, me := h.team, h.user(h.team, 0)
	c := h.dial(team, me, "")
	room := h.must(h.origin.CreateChannel(ctx, team, "big-talk", me, true))
	text := strings.Repeat("é", 10<<10) // 20 KiB, two bytes a rune: a cut must not split one
	bigMsg := h.must(h.origin.PostMessage(ctx, team, room.Channel.ID, me, text, nil))
	title := strings.Repeat("t", 20<<10)
	bigUser := h.must(h.origin.UpdateUser(ctx, team, me, func(u *origin.User) { u.Title = title }))
	small := h.must(h.origin.PostMessage(ctx, team, room.Channel.ID, me, "short", nil))
	waitAll(t, []*wsClient{c}, small.Seq)

	check := func(c *wsClient, from int64) {
		t.Helper()
		bySeq := map[int64]frame{}
		for _, f := range c.events() {
			bySeq[f.Seq] = f
		}
		for seq := from; seq <= small.Seq; seq++ {
			f, ok := bySeq[seq]
			testkit.True(t, ok, "seq %d arrived (no hole)", seq)
			// The bound is on the event; annotations (objects the client would otherwise ask
			// for, a few at most) come on top.
			var whole map[string]json.RawMessage
			testkit.OK(t, json.Unmarshal(f.raw, &whole))
			delete(whole, "annotations")
			bare, _ := json.Marshal(whole)
			testkit.True(t, len(bare) <= bound, "seq %d: an event frame of %d bytes without annotations (bound %d)", seq, len(bare), bound)
		}
		var m struct {
			Cut string `json:"cut"`
		}
		f := bySeq[bigMsg.Seq]
		testkit.OK(t, json.Unmarshal(f.raw, &m))
		testkit.Equal(t, m.Cut, protocol.CutTooLarge, "the big message's cut")
		testkit.True(t, f.Event.Text != "" && strings.HasPrefix(text, f.Event.Text) && len(f.Event.Text) < len(text),
			"the big message's text is a head of the original (%d of %d bytes)", len(f.Event.Text), len(text))
		testkit.True(t, strings.ToValidUTF8(f.Event.Text, "?") == f.Event.Text, "the cut text is valid UTF-8")

		f = bySeq[bigUser.Seq]
		m.Cut = ""
		testkit.OK(t, json.Unmarshal(f.raw, &m))
		testkit.Equal(t, m.Cut, protocol.CutTooLarge, "the big user_change's cut")
		testkit.True(t, f.Event.User == nil && f.Event.UserID == me, "the cut user_change carries the user's ID only: %+v", f.Event)

		f = bySeq[small.Seq]
		m.Cut = ""
		testkit.OK(t, json.Unmarshal(f.raw, &m))
		testkit.Equal(t, m.Cut, "", "the small message's cut")
		testkit.Equal(t, f.Event.Text, "short", "the small message's text")
		// The cut user_change did not carry the user: the next event naming it annotates it,
		// whole, as for a client that never had it.
		testkit.True(t, f.Annotations != nil && f.Annotations.Users[me].Title == title,
			"the message after the cut user_change annotates its sender, whole")
	}
	check(c, room.Seq)
	testkit.Equal(t, h.metric(`weft_edge_events_cut_total{type="message",why="too_large"}`), 1.0, "messages cut")
	testkit.Equal(t, h.metric(`weft_edge_events_cut_total{type="user_change",why="too_large"}`), 1.0, "user_changes cut")

	// The store has the whole user.
	var info struct {
		Users []origin.User `json:"users"`
	}
	c.call("users.info", map[string]any{"users": []string{me}}, &info)
	testkit.True(t, len(info.Users) == 1 && info.Users[0].Title == title, "users.info answers the whole user")

	// A resume replays them, cut the same way.
	r := h.dial(team, me, fmt.Sprintf("since=%d", room.Seq-1))
	waitAll(t, []*wsClient{r}, small.Seq)
	check(r, room.Seq)
}
