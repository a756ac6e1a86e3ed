package edge

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

type acResult struct {
	Results []index.Result `json:"results"`
}

func ids(rs []index.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// The method end to end, over both transports: a user found by their real name, results only
// from the caller's team, labels and types as docs/protocol.md says.
func TestAutocompleteMethod(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	caller := h.user(h.team, 0)
	users := h.origin.Users(h.team)
	target := users[3]
	own := map[string]bool{}
	for _, u := range users {
		own[u.ID] = true
	}
	for _, c := range h.origin.Channels(h.team) {
		own[c.ID] = true
	}
	for name, call := range h.callers(h.team, caller) {
		var res acResult
		call("autocomplete", map[string]any{"query": strings.ToUpper(target.RealName), "types": []string{"users"}}, &res)
		if len(res.Results) == 0 || res.Results[0].ID != target.ID || res.Results[0].Type != "user" {
			t.Fatalf("%s: %q: got %+v, want %s first", name, target.RealName, res.Results, target.ID)
		}
		// Every other team's names: nothing of theirs may come back.
		for _, u := range h.origin.Users(h.other) {
			call("autocomplete", map[string]any{"query": u.RealName, "limit": 50}, &res)
			for _, r := range res.Results {
				if !own[r.ID] {
					t.Fatalf("%s: %q returned %s, which is not of team %s", name, u.RealName, r.ID, h.team)
				}
			}
		}
		call("autocomplete", map[string]any{"query": "general", "types": []string{"channels"}}, &res)
		if len(res.Results) == 0 || res.Results[0].Label != "#general" || res.Results[0].Type != "channel" {
			t.Fatalf("%s: general: got %+v", name, res.Results)
		}
		call("autocomplete", map[string]any{"query": ""}, &res)
		if res.Results == nil || len(res.Results) != 0 {
			t.Fatalf("%s: an empty query must answer an empty list, got %+v", name, res.Results)
		}
	}
}

func TestAutocompleteBadParams(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.dial(h.team, h.user(h.team, 0), "")
	for _, p := range []any{
		map[string]any{},
		map[string]any{"query": 5},
		map[string]any{"query": "a", "limit": 0},
		map[string]any{"query": "a", "limit": 51},
		map[string]any{"query": "a", "types": []string{"people"}},
		map[string]any{"query": strings.Repeat("a", 257)},
	} {
		f := c.request("autocomplete", p)
		if f.OK || f.Error == nil || f.Error.Code != protocol.CodeInvalidRequest {
			t.Errorf("params %v: want invalid_request, got %s", p, f.raw)
		}
	}
	// The connection is still usable.
	var res acResult
	c.call("autocomplete", map[string]any{"query": "gen"}, &res)
}

// The index follows the team's events through the real path: origin mutation → NATS → cache →
// index, and the next keystroke sees it.
func TestAutocompleteFollowsEvents(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	caller := h.user(h.team, 0)
	other := h.user(h.team, 5)
	c := h.dial(h.team, caller, "")
	search := func(c *wsClient, q string, inactive bool) []string {
		t.Helper()
		var res acResult
		c.call("autocomplete", map[string]any{"query": q, "limit": 50, "include_inactive": inactive}, &res)
		return ids(res.Results)
	}
	has := func(c *wsClient, q, id string) bool { return slices.Contains(search(c, q, false), id) }

	// Rename a channel: the new name matches, the old one stops matching.
	ch := h.origin.Channels(h.team)[1]
	oldWord := index.Words(ch.Name)[0]
	if !has(c, ch.Name, ch.ID) {
		t.Fatalf("%s not found by its name %q", ch.ID, ch.Name)
	}
	ev := h.must(h.origin.UpdateChannel(ctx, h.team, ch.ID, func(c *origin.Channel) { c.Name = "zebra-launch" }))
	h.applied(h.team, ev.Seq)
	if !has(c, "zebra lau", ch.ID) || has(c, oldWord, ch.ID) {
		t.Fatalf("after the rename: zebra lau → %v, %q → %v", search(c, "zebra lau", false), oldWord, search(c, oldWord, false))
	}

	// Rename a user; then deactivate them: they disappear (unless include_inactive).
	u := h.origin.Users(h.team)[4]
	ev = h.must(h.origin.UpdateUser(ctx, h.team, u.ID, func(u *origin.User) { u.DisplayName = "Quixote" }))
	h.applied(h.team, ev.Seq)
	if !has(c, "quix", u.ID) {
		t.Fatalf("renamed user %s not found by the new display name", u.ID)
	}
	ev = h.must(h.origin.UpdateUser(ctx, h.team, u.ID, func(u *origin.User) { u.Deleted = true }))
	h.applied(h.team, ev.Seq)
	if has(c, "quix", u.ID) || !slices.Contains(search(c, "quix", true), u.ID) {
		t.Fatalf("a deactivated user must be left out, and found with include_inactive")
	}

	// A private channel someone else creates: visible to its creator only, until the caller
	// joins; gone again after they leave; gone for everyone once deleted.
	ev = h.must(h.origin.CreateChannel(ctx, h.team, "yak-shaving", other, true))
	h.applied(h.team, ev.Seq)
	priv := ev.Channel.ID
	oc := h.dial(h.team, other, "")
	if has(c, "yak", priv) || !has(oc, "yak", priv) {
		t.Fatalf("private channel: caller sees %v, creator sees %v", search(c, "yak", false), search(oc, "yak", false))
	}
	ev = h.must(h.origin.JoinChannel(ctx, h.team, priv, caller))
	h.applied(h.team, ev.Seq)
	if !has(c, "yak", priv) {
		t.Fatal("a member must find the private channel")
	}
	ev = h.must(h.origin.LeaveChannel(ctx, h.team, priv, caller))
	h.applied(h.team, ev.Seq)
	if has(c, "yak", priv) {
		t.Fatal("after leaving, the private channel must not be found")
	}
	ev = h.must(h.origin.DeleteChannel(ctx, h.team, priv))
	h.applied(h.team, ev.Seq)
	if has(oc, "yak", priv) {
		t.Fatal("a deleted channel must not be found")
	}

	// A public channel created now is found by everyone, and its creator ranks it as theirs.
	ev = h.must(h.origin.CreateChannel(ctx, h.team, "kayak-club", other, false))
	h.applied(h.team, ev.Seq)
	var mine, theirs acResult
	oc.call("autocomplete", map[string]any{"query": "kayak"}, &mine)
	c.call("autocomplete", map[string]any{"query": "kayak"}, &theirs)
	if len(mine.Results) != 1 || mine.Results[0].ID != ev.Channel.ID || len(theirs.Results) != 1 ||
		theirs.Results[0].ID != ev.Channel.ID {
		t.Fatalf("kayak: creator got %+v, caller got %+v", mine.Results, theirs.Results)
	}
	if mine.Results[0].Score <= theirs.Results[0].Score {
		t.Fatalf("the creator is a member: their score %v must beat a non-member's %v",
			mine.Results[0].Score, theirs.Results[0].Score)
	}
}

// The edge reports its index in /metrics: build times, and memory summed over the teams and
// the largest team's.
func TestAutocompleteMetrics(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.dial(h.team, h.user(h.team, 0), "")
	var res acResult
	c.call("autocomplete", map[string]any{"query": "a"}, &res)
	_, body := h.opsGet("/metrics")
	for _, want := range []string{
		`weft_edge_index_build_seconds_count{part="prefix"} 1`,
		`weft_edge_index_bytes{part="prefix"}`,
		`weft_edge_index_bytes_max{part="prefix"}`,
		`weft_edge_request_seconds_count{method="autocomplete"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
