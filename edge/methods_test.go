package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/protocol"
)

// caller runs one method for one user, over the WebSocket or over /api, and decodes the result.
type caller func(method string, params, out any)

func (h *harness) callers(team, user string) map[string]caller {
	c := h.dial(team, user, "")
	tok := h.token(team, user)
	return map[string]caller{
		"ws":  c.call,
		"api": func(m string, p, out any) { h.apiCall(tok, m, p, out) },
	}
}

// pageAll pages an ID listing (channels.members, users.channels) to its end, limit at a time.
func pageAll(t *testing.T, call caller, method string, params map[string]any, field string, limit int) []string {
	t.Helper()
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s never ends", method)
		}
		p := map[string]any{"limit": limit}
		for k, v := range params {
			p[k] = v
		}
		if cursor != "" {
			p["cursor"] = cursor
		}
		var page map[string]json.RawMessage
		call(method, p, &page)
		var ids []string
		if err := json.Unmarshal(page[field], &ids); err != nil || ids == nil {
			t.Fatalf("%s: %s is not a list: %s", method, field, page[field])
		}
		if len(ids) > limit {
			t.Fatalf("%s: %d items on a page of %d", method, len(ids), limit)
		}
		all = append(all, ids...)
		if err := json.Unmarshal(page["next_cursor"], &cursor); err != nil {
			t.Fatalf("%s: next_cursor %s", method, page["next_cursor"])
		}
		if cursor == "" {
			return all
		}
	}
}

func sorted[T any](s []T, key func(T) string) []T {
	s = slices.Clone(s)
	sort.Slice(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
	return s
}

func sortedIDs(s []string) []string { return sorted(s, func(x string) string { return x }) }

func userKey(u origin.User) string       { return u.ID }
func channelKey(c origin.Channel) string { return c.ID }

// originMembers is channel → sorted member IDs, as the origin holds them now.
func originMembers(o *reference.Server, team string) map[string][]string {
	m := make(map[string][]string)
	for _, ms := range o.Memberships(team) {
		m[ms.Channel] = append(m[ms.Channel], ms.User)
	}
	for c := range m {
		m[c] = sortedIDs(m[c])
	}
	return m
}

func TestMethodsMatchOrigin(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	me, other := h.user(h.team, 3), h.user(h.team, 4)
	// A private channel of other's that me is not in, and one of me's, so visibility matters.
	hidden := h.must(h.origin.CreateChannel(ctx, h.team, "hidden-room", other, true)).Channel.ID
	mine := h.must(h.origin.CreateChannel(ctx, h.team, "my-room", me, true)).Channel.ID
	last := h.must(h.origin.JoinChannel(ctx, h.team, mine, other))
	h.dial(h.team, me, "") // loads the team
	h.applied(h.team, last.Seq)

	users := h.origin.Users(h.team)
	chans := h.origin.Channels(h.team)
	members := originMembers(h.origin, h.team)
	visible := func(c origin.Channel) bool { return !c.IsPrivate || slices.Contains(members[c.ID], me) }
	team, _ := h.origin.Team(h.team)

	for name, call := range h.callers(h.team, me) {
		t.Run(name, func(t *testing.T) {
			var boot bootResult
			call("boot", nil, &boot)
			self, _ := h.origin.User(h.team, me)
			var wantChans []origin.Channel
			for _, id := range h.origin.ChannelsOf(h.team, me) {
				c, _ := h.origin.Channel(h.team, id)
				wantChans = append(wantChans, c)
			}
			if !reflect.DeepEqual(boot.Self, self) || boot.Seq != h.origin.Seq(h.team) ||
				!reflect.DeepEqual(sorted(boot.Channels, channelKey), wantChans) {
				t.Errorf("boot = %+v\nwant self %+v, seq %d, channels %+v", boot, self, h.origin.Seq(h.team), wantChans)
			}
			if boot.Team != team {
				t.Errorf("boot team = %+v, origin has %+v", boot.Team, team)
			}
			if slices.ContainsFunc(boot.Channels, func(c origin.Channel) bool { return c.ID == hidden }) {
				t.Errorf("boot lists %s, a channel of someone else", hidden)
			}

			// users.list, paged to the end, and with the default limit.
			var got []origin.User
			cursor := ""
			for {
				var page usersListResult
				call("users.list", map[string]any{"limit": 7, "cursor": cursor}, &page)
				if len(page.Users) > 7 {
					t.Fatalf("users.list: page of %d", len(page.Users))
				}
				got = append(got, page.Users...)
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			if !reflect.DeepEqual(sorted(got, userKey), sorted(users, userKey)) {
				t.Errorf("users.list paged = %+v\nwant %+v", got, users)
			}
			var one usersListResult
			call("users.list", nil, &one)
			if one.NextCursor != "" || !reflect.DeepEqual(sorted(one.Users, userKey), sorted(users, userKey)) {
				t.Errorf("users.list default = %d users, next %q", len(one.Users), one.NextCursor)
			}

			// users.info, in the order asked, with an unknown ID.
			ids := []string{"U0ZZZZZZZ"}
			for _, u := range users {
				ids = append(ids, u.ID)
			}
			var info usersInfoResult
			call("users.info", map[string]any{"users": ids}, &info)
			if !reflect.DeepEqual(info.Users, users) || !reflect.DeepEqual(info.Missing, []string{"U0ZZZZZZZ"}) {
				t.Errorf("users.info = %+v", info)
			}

			// channels.info: the private channel me is not in is missing.
			var cids, wantMissing []string
			var wantFound []origin.Channel
			for _, c := range chans {
				cids = append(cids, c.ID)
				if visible(c) {
					wantFound = append(wantFound, c)
				} else {
					wantMissing = append(wantMissing, c.ID)
				}
			}
			var ci channelsInfoResult
			call("channels.info", map[string]any{"channels": cids}, &ci)
			if !reflect.DeepEqual(ci.Channels, wantFound) || !reflect.DeepEqual(ci.Missing, wantMissing) {
				t.Errorf("channels.info = %+v\nwant %+v missing %v", ci, wantFound, wantMissing)
			}
			if !slices.Equal(wantMissing, []string{hidden}) {
				t.Errorf("expected exactly %s to be invisible, got %v", hidden, wantMissing)
			}

			// channels.members of every visible channel, paged.
			for _, c := range wantFound {
				got := pageAll(t, call, "channels.members", map[string]any{"channel": c.ID}, "members", 3)
				if !slices.Equal(sortedIDs(got), members[c.ID]) {
					t.Errorf("channels.members %s = %v, want %v", c.ID, got, members[c.ID])
				}
			}

			// users.channels of everyone (me by default), paged.
			for _, u := range users {
				params := map[string]any{"user": u.ID}
				if u.ID == me {
					params = nil
				}
				got := pageAll(t, call, "users.channels", params, "channels", 2)
				var want []string
				for _, id := range h.origin.ChannelsOf(h.team, u.ID) {
					if c, _ := h.origin.Channel(h.team, id); visible(c) {
						want = append(want, id)
					}
				}
				if !slices.Equal(sortedIDs(got), want) {
					t.Errorf("users.channels %s = %v, want %v", u.ID, got, want)
				}
				if slices.Contains(got, hidden) {
					t.Errorf("users.channels %s shows %s", u.ID, hidden)
				}
			}

			var pong map[string]any
			call("ping", nil, &pong)
			if len(pong) != 0 {
				t.Errorf("ping = %v", pong)
			}
		})
	}
}

func TestVisibility(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	me, owner := h.user(h.team, 1), h.user(h.team, 2)
	secret := h.must(h.origin.CreateChannel(ctx, h.team, "secret-plans", owner, true)).Channel.ID
	c := h.dial(h.team, me, "")
	h.applied(h.team, h.origin.Seq(h.team))
	tok := h.token(h.team, me)
	ownerClient := h.dial(h.team, owner, "")

	// Another team's objects, as the caller would name them.
	foreignUser := h.user(h.other, 0)
	foreignChan := h.origin.Channels(h.other)[0].ID

	type check struct {
		method string
		params map[string]any
		code   string // error code, or "" for a result checked by ok
		ok     func(map[string]json.RawMessage) bool
	}
	missing := func(id string) func(map[string]json.RawMessage) bool {
		return func(r map[string]json.RawMessage) bool {
			var m []string
			json.Unmarshal(r["missing"], &m)
			return slices.Equal(m, []string{id}) && (string(r["channels"]) == "[]" || string(r["users"]) == "[]")
		}
	}
	checks := []check{
		{"channels.info", map[string]any{"channels": []string{secret}}, "", missing(secret)},
		{"channels.members", map[string]any{"channel": secret}, protocol.CodeNotFound, nil},
		{"users.channels", map[string]any{"user": owner}, "", func(r map[string]json.RawMessage) bool {
			var ids []string
			json.Unmarshal(r["channels"], &ids)
			return len(ids) > 0 && !slices.Contains(ids, secret)
		}},
		{"users.info", map[string]any{"users": []string{foreignUser}}, "", missing(foreignUser)},
		{"channels.info", map[string]any{"channels": []string{foreignChan}}, "", missing(foreignChan)},
		{"channels.members", map[string]any{"channel": foreignChan}, protocol.CodeNotFound, nil},
		{"users.channels", map[string]any{"user": foreignUser}, protocol.CodeNotFound, nil},
	}
	for _, ck := range checks {
		f := c.request(ck.method, ck.params)
		status, body := h.api(tok, ck.method, ck.params)
		if ck.code != "" {
			if f.OK || f.Error == nil || f.Error.Code != ck.code {
				t.Errorf("ws %s %v = %s, want %s", ck.method, ck.params, f.raw, ck.code)
			}
			var e protocol.Error
			json.Unmarshal(body["error"], &e)
			if status != http.StatusNotFound || e.Code != ck.code {
				t.Errorf("api %s %v = %d %v, want %s", ck.method, ck.params, status, body, ck.code)
			}
			continue
		}
		var r map[string]json.RawMessage
		json.Unmarshal(f.Result, &r)
		if !f.OK || !ck.ok(r) {
			t.Errorf("ws %s %v = %s", ck.method, ck.params, f.raw)
		}
		if status != http.StatusOK || !ck.ok(body) {
			t.Errorf("api %s %v = %d %v", ck.method, ck.params, status, body)
		}
	}

	// The owner sees it everywhere.
	var ci channelsInfoResult
	ownerClient.call("channels.info", map[string]any{"channels": []string{secret}}, &ci)
	if len(ci.Channels) != 1 || ci.Channels[0].ID != secret || len(ci.Missing) != 0 {
		t.Errorf("owner channels.info = %+v", ci)
	}
	got := pageAll(t, ownerClient.call, "users.channels", nil, "channels", 100)
	if !slices.Contains(got, secret) {
		t.Errorf("owner users.channels = %v, lacks %s", got, secret)
	}
}

// TestLoadedTeamNeverTouchesOrigin: once a team is loaded, boot and the other methods are
// answered from memory, even with the origin down.
func TestLoadedTeamNeverTouchesOrigin(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	user := h.user(h.team, 5)
	h.dial(h.team, user, "")
	before := h.orig.Requests()
	h.origin.SetFaults(reference.Faults{Down: true})

	c := h.dial(h.team, h.user(h.team, 6), "")
	var boot bootResult
	c.call("boot", nil, &boot)
	if boot.Self.ID != h.user(h.team, 6) || len(boot.Channels) == 0 {
		t.Errorf("boot = %+v", boot)
	}
	var list usersListResult
	c.call("users.list", nil, &list)
	h.apiCall(h.token(h.team, user), "boot", nil, &boot)
	if boot.Self.ID != user {
		t.Errorf("api boot = %+v", boot)
	}
	if n := h.orig.Requests() - before; n != 0 {
		t.Errorf("the origin got %d requests for a loaded team", n)
	}

	// A team that is not loaded cannot be, while the origin is down: an error, not a hang or a
	// crash, and the loaded team keeps working.
	h.origin.SetFaults(reference.Faults{})
	status, body := h.api(h.token(h.team, user), "ping", nil)
	if status != http.StatusOK || string(body["ok"]) != "true" {
		t.Errorf("ping = %d %v", status, body)
	}
	status, body = h.api(h.token("T0000ZZZZ", "U0000ZZZZ"), "boot", nil)
	var e protocol.Error
	json.Unmarshal(body["error"], &e)
	if status != http.StatusNotFound || e.Code != protocol.CodeNotFound {
		t.Errorf("boot of an unknown team = %d %v", status, body)
	}
}
