package js

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/weft-edge/weft/internal/testkit"
)

// bootChannel is what the tests read of boot's channels.
type bootChannel struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	MemberCount int    `json:"member_count"`
}

// TestPage uses the page of `weft dev` the way a person would, in headless Chromium: picks a
// user, finds a colleague with the Quick Switcher one key at a time, opens a channel with the
// arrow keys and Enter, watches messages posted by other members arrive with their senders'
// names (and never asks users.info for one), pages the member list by scrolling, and sees the
// edge restart: reconnecting, then resumed with every message posted meanwhile, once, in order.
func TestPage(t *testing.T) {
	s := startDev(t, "small", 20)
	users := s.users(t)
	// Me: the listed person of the first team in the most channels, for a fuller channel list.
	var me devUser
	most := 0
	for _, u := range users {
		var mine struct{ Channels []string }
		s.api(t, u, "users.channels", map[string]any{"limit": 1000}, &mine)
		if u.Team == users[0].Team && len(mine.Channels) > most {
			me, most = u, len(mine.Channels)
		}
	}
	var mates []devUser // colleagues of me that /dev/users lists
	for _, u := range users {
		if u.Team == me.Team && u.ID != me.ID {
			mates = append(mates, u)
		}
	}
	// The channel: one of mine with more members than a page of the member list, where at
	// least 3 of the listed colleagues can post.
	var boot struct{ Channels []bootChannel }
	s.api(t, me, "boot", map[string]any{}, &boot)
	var ch bootChannel
	var posters []devUser
	for _, c := range boot.Channels {
		members := s.members(t, me, c.ID)
		var ps []devUser
		for _, u := range mates {
			if slices.Contains(members, u.ID) {
				ps = append(ps, u)
			}
		}
		if c.MemberCount > 60 && len(ps) >= 3 {
			ch, posters = c, ps[:3]
			break
		}
	}
	if ch.ID == "" {
		t.Fatalf("no channel of %s with more than 60 members and 3 listed colleagues in it: %+v", me.ID, boot.Channels)
	}
	// The colleague to look for: one whose name is typed on a plain keyboard.
	var colleague devUser
	for _, u := range slices.Backward(mates) {
		if len(u.RealName) >= 8 && strings.Trim(u.RealName, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ") == "" {
			colleague = u
			break
		}
	}
	if colleague.ID == "" {
		t.Fatalf("no colleague of %s with a plain ASCII name among %+v", me.ID, mates)
	}

	b := newBrowser(t)
	b.run(t, chromedp.Navigate(s.page+"/"))
	// Picked with the keyboard alone: focus the button, press Enter.
	pick := fmt.Sprintf(`#picker button[data-user=%q]`, me.ID)
	b.run(t, chromedp.WaitVisible(chromedp.CSS(pick)), chromedp.Focus(chromedp.CSS(pick)), chromedp.KeyEvent(kb.Enter))
	b.waitJS(t, `document.querySelector('#conn-state')?.dataset.state === 'open'`, "the page to say connected")
	b.waitJS(t, fmt.Sprintf(`document.querySelector('#channels a[data-channel=%q]')`, ch.ID), "the channel list from boot")

	t.Run("switcher finds a colleague before the whole name is typed", func(t *testing.T) {
		b.run(t, chromedp.KeyEvent("k", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
		b.waitJS(t, `!document.querySelector('#switcher').hidden && document.activeElement?.id === 'switcher-input'`,
			"Ctrl-K to open the switcher with the focus in its input")
		name := colleague.RealName
		typed, found := "", -1
		for _, r := range name {
			typed += string(r)
			b.run(t, chromedp.KeyEvent(string(r)))
			b.waitJS(t, fmt.Sprintf(`document.querySelector('#switcher-results').dataset.query === %s`, jsString(typed)),
				fmt.Sprintf("results for %q", typed))
			var idx int
			b.eval(t, fmt.Sprintf(`[...document.querySelectorAll('#switcher-results .sw-result')].findIndex(e => e.dataset.id === %q)`, colleague.ID), &idx)
			if idx >= 0 && len(typed) >= 3 { // a few letters, as a person would type before looking
				found = idx
				break
			}
		}
		if found < 0 || len(typed) >= len(name) {
			t.Fatalf("%s (%q) was not in the results before the whole name was typed (typed %q)", colleague.ID, name, typed)
		}
		t.Logf("%q found %s after %d of %d letters, result %d", name, colleague.ID, len([]rune(typed)), len([]rune(name)), found+1)
		// What is highlighted is what was typed: each mark starts like a word of the query.
		var marks []string
		b.eval(t, fmt.Sprintf(`[...document.querySelectorAll('#switcher-results .sw-result[data-id=%q] mark')].map(m => m.textContent)`, colleague.ID), &marks)
		if len(marks) == 0 {
			t.Errorf("the colleague's result highlights nothing for %q", typed)
		}
		for _, m := range marks {
			if !slices.ContainsFunc(strings.Fields(strings.ToLower(typed)), func(w string) bool { return strings.HasPrefix(w, strings.ToLower(m)) }) {
				t.Errorf("the colleague's result highlights %q, which is no query word's prefix (typed %q)", m, typed)
			}
		}
		var keys int
		b.mu.Lock()
		for _, f := range b.sent {
			if strings.Contains(f, `"autocomplete"`) {
				keys++
			}
		}
		b.mu.Unlock()
		if keys < len([]rune(typed)) {
			t.Errorf("the page sent %d autocomplete requests for %d keystrokes; want one each", keys, len([]rune(typed)))
		}
		// Down to the colleague with the arrow keys, then Enter: a direct conversation.
		for range found {
			b.run(t, chromedp.KeyEvent(kb.ArrowDown))
		}
		b.waitJS(t, fmt.Sprintf(`document.querySelector('#switcher-results [aria-selected="true"]')?.dataset.id === %q`, colleague.ID),
			"the arrow keys to select the colleague")
		b.run(t, chromedp.KeyEvent(kb.Enter))
		b.waitJS(t, fmt.Sprintf(`document.querySelector('#switcher').hidden && document.querySelector('#view').dataset.kind === 'dm' && document.querySelector('#view').dataset.id === %q`, colleague.ID),
			"Enter to open a direct conversation with the colleague")
	})

	t.Run("switcher opens a channel with the arrow keys", func(t *testing.T) {
		b.run(t, chromedp.KeyEvent("k", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
		b.waitJS(t, `!document.querySelector('#switcher').hidden && document.activeElement?.id === 'switcher-input'`, "the switcher again")
		// Letter by letter until the channel is among the results.
		q := ""
		for _, r := range ch.Name {
			q += string(r)
			b.run(t, chromedp.KeyEvent(string(r)))
			b.waitJS(t, fmt.Sprintf(`document.querySelector('#switcher-results').dataset.query === %s`, jsString(q)), fmt.Sprintf("results for %q", q))
			var in bool
			b.eval(t, fmt.Sprintf(`!!document.querySelector('#switcher-results .sw-result[data-id=%q]')`, ch.ID), &in)
			if in {
				break
			}
		}
		b.screenshot(t, "page-switcher.png") // ranked people and channels, the typed part marked
		var idx, n int
		b.eval(t, fmt.Sprintf(`[...document.querySelectorAll('#switcher-results .sw-result')].findIndex(e => e.dataset.id === %q)`, ch.ID), &idx)
		b.eval(t, `document.querySelectorAll('#switcher-results .sw-result').length`, &n)
		// Down past it and back up, so that both keys are seen to move the selection.
		for range idx + 1 {
			b.run(t, chromedp.KeyEvent(kb.ArrowDown))
		}
		if idx+1 < n {
			b.waitJS(t, fmt.Sprintf(`document.querySelector('#switcher-results [aria-selected="true"]')?.dataset.id !== %q`, ch.ID), "ArrowDown to move past the channel")
		}
		b.run(t, chromedp.KeyEvent(kb.ArrowUp))
		b.waitJS(t, fmt.Sprintf(`document.querySelector('#switcher-results [aria-selected="true"]')?.dataset.id === %q`, ch.ID), "ArrowUp to come back to the channel")
		b.run(t, chromedp.KeyEvent(kb.Enter))
		b.waitJS(t, fmt.Sprintf(`document.querySelector('#view').dataset.kind === 'channel' && document.querySelector('#view').dataset.id === %q`, ch.ID),
			"Enter to open the channel")
	})

	// What the colleagues say, each line once: the page's screenshot shows them.
	lines := []string{
		"Morning! The release branch is cut, notes are in the doc.",
		"Thanks. I'll run the migration on staging after standup.",
		"Heads up: the dashboard panel for p99 moved to the overview row.",
		"Staging migration done, 0 errors. Promoting at noon.",
		"Can someone review the switcher change? It is small.",
		"On it. Lunch first, then review.",
		"The edge restarted under us and nobody noticed. Nice.",
		"Was anything lost while it was down?",
		"Nothing: the client resumed from its last seq.",
		"Every message came back once, in order.",
		"Love it. Ship it.",
		"Shipping the notes to the customers now.",
		"Back online? Checking in after the restart.",
		"All good here.",
	}
	var want []string // the texts posted, in order
	var wantFrom []devUser
	postAll := func(n int) {
		for range n {
			u := posters[len(want)%len(posters)]
			text := lines[len(want)%len(lines)]
			if len(want) >= len(lines) {
				text += fmt.Sprintf(" (%d)", len(want)) // the lines ran out: still one of a kind
			}
			s.post(t, me.Team, ch.ID, u.ID, text)
			want, wantFrom = append(want, text), append(wantFrom, u)
		}
	}
	ours := func(text string) bool { return slices.Contains(want, text) }
	// rendered lists the channel view's messages of this test, in the page's order.
	type shown struct {
		Seq    int    `json:"seq"`
		User   string `json:"user"`
		Sender string `json:"sender"`
		Text   string `json:"text"`
	}
	rendered := func(t *testing.T) []shown {
		var all []shown
		b.eval(t, `[...document.querySelectorAll('#messages li.msg')].map(e => ({seq: +e.dataset.seq, user: e.dataset.user,
			sender: e.querySelector('.msg-sender')?.textContent ?? '', text: e.querySelector('.msg-text')?.textContent ?? ''}))`, &all)
		return all
	}
	checkRendered := func(t *testing.T) {
		var mine []shown
		last := 0
		for _, m := range rendered(t) {
			if m.Seq <= last {
				t.Errorf("message seq %d shown after seq %d", m.Seq, last)
			}
			last = m.Seq
			if ours(m.Text) {
				mine = append(mine, m)
			}
		}
		if len(mine) != len(want) {
			t.Fatalf("the channel shows %d of the %d messages posted: %+v", len(mine), len(want), mine)
		}
		for i, m := range mine {
			u := wantFrom[i]
			if m.Text != want[i] || m.User != u.ID {
				t.Errorf("message %d: shown %q from %s; want %q from %s", i+1, m.Text, m.User, want[i], u.ID)
			}
			if m.Sender != u.DisplayName && m.Sender != u.RealName && m.Sender != u.Name {
				t.Errorf("message %d is shown from %q; want %s's name (%q or %q)", i+1, m.Sender, u.ID, u.DisplayName, u.RealName)
			}
		}
		var unknown int
		b.eval(t, `document.querySelectorAll('#messages .unknown-sender').length`, &unknown)
		if unknown != 0 {
			t.Errorf("%d messages rendered without their sender in the store", unknown)
		}
	}
	waitOurs := func(t *testing.T) {
		wantJS, _ := json.Marshal(want)
		b.waitJS(t, fmt.Sprintf(`(() => { const want = new Set(%s);
			return [...document.querySelectorAll('#messages li.msg .msg-text')].filter(e => want.has(e.textContent)).length >= want.size })()`,
			wantJS), fmt.Sprintf("%d posted messages in the channel", len(want)))
	}

	t.Run("live messages show their senders' names without users.info", func(t *testing.T) {
		// From here on: the direct conversation above may have asked for the colleague's
		// profile, which no event had brought.
		asked, answered := b.usersInfo.Load(), s.metric(t, "weft_edge_requests_total", `method="users.info"`)
		postAll(6)
		waitOurs(t)
		checkRendered(t)
		b.screenshot(t, "page-channel.png")
		if n := b.usersInfo.Load() - asked; n != 0 {
			t.Errorf("the page sent %d users.info requests for the messages; want none: senders come with the events' annotations", n)
		}
		if n := s.metric(t, "weft_edge_requests_total", `method="users.info"`) - answered; n != 0 {
			t.Errorf("the edge answered %v users.info requests meanwhile; want none", n)
		}
		annotated := b.annotatedUsers()
		for _, u := range posters {
			if !annotated[u.ID] {
				t.Errorf("no event reached the page with %s attached: where did its name come from?", u.ID)
			}
		}
		t.Logf("users.info requests sent by the page: %d before the messages (the direct conversation's profile), %d for them", asked, b.usersInfo.Load()-asked)
	})

	t.Run("member list pages lazily as it scrolls", func(t *testing.T) {
		b.run(t, chromedp.Click(chromedp.CSS(`#members-toggle`)))
		b.waitJS(t, `document.querySelector('#members')?.dataset.pages === '1'`, "the member list's first page")
		var first int
		b.eval(t, `document.querySelectorAll('#members li.member').length`, &first)
		if first >= ch.MemberCount {
			t.Fatalf("the first page shows %d of %d members: nothing left to page", first, ch.MemberCount)
		}
		testkit.EventuallyWithin(t, 45*time.Second, func() bool {
			var done bool
			b.eval(t, `(() => { const m = document.querySelector('#members'); if (m.dataset.complete === 'true') return true;
				document.querySelector('#members-more')?.scrollIntoView(); return false })()`, &done)
			return done
		}, "scrolling to page the whole member list")
		var pages string
		var shownNames []string
		b.eval(t, `document.querySelector('#members').dataset.pages`, &pages)
		b.eval(t, `[...document.querySelectorAll('#members li.member')].map(e => e.textContent.trim())`, &shownNames)
		if len(shownNames) != ch.MemberCount || pages == "1" {
			t.Fatalf("the member list shows %d members in %s pages; want all %d in more than one", len(shownNames), pages, ch.MemberCount)
		}
		for i, n := range shownNames {
			if n == "" {
				t.Fatalf("member %d shown without a name", i)
			}
		}
		b.run(t, chromedp.Click(chromedp.CSS(`#members-toggle`)))
	})

	t.Run("edge restart: reconnecting, then every message posted meanwhile once in order", func(t *testing.T) {
		s.control(t, "kill")
		b.waitJS(t, `document.querySelector('#conn-state').dataset.state === 'reconnecting'`, "the page to say reconnecting")
		var label string
		b.eval(t, `document.querySelector('#conn-state').textContent`, &label)
		if !strings.Contains(strings.ToLower(label), "reconnecting") {
			t.Errorf("the connection state reads %q while the edge is down", label)
		}
		postAll(5)
		s.control(t, "start")
		b.waitJS(t, `+document.querySelector('#conn-state').dataset.resumes >= 1`, "the page to resume")
		waitOurs(t)
		postAll(3)
		waitOurs(t)
		checkRendered(t)
	})
}

// members lists a channel's members through the edge's HTTP API.
func (s *devStack) members(t testing.TB, u devUser, channel string) []string {
	t.Helper()
	var all []string
	cursor := ""
	for {
		var page struct {
			Members    []string `json:"members"`
			NextCursor string   `json:"next_cursor"`
		}
		s.api(t, u, "channels.members", map[string]any{"channel": channel, "cursor": cursor, "limit": 1000}, &page)
		all = append(all, page.Members...)
		if cursor = page.NextCursor; cursor == "" {
			return all
		}
	}
}

// BenchmarkSwitcherKeystrokes types people's names into the page's Quick Switcher on the 32k
// world, one key at a time, each key after the previous one's results are on screen, and
// reports the per-keystroke latency the page measured (window.weftPage.switcherLatencies:
// from the input event to the animation frame that paints the results; and to the reply's
// arrival, and to the list in the DOM) over b.N names:
//
//	go test -run '^$' -bench SwitcherKeystrokes -benchtime 40x ./clients/js/
func BenchmarkSwitcherKeystrokes(b *testing.B) {
	s := startDev(b, "32k", 20)
	me := s.users(b)[0]
	var list struct {
		Users []struct {
			RealName string `json:"real_name"`
		}
	}
	s.getJSON(b, s.origin+"/origin/v1/teams/"+me.Team+"/users?limit=1000", &list)
	var names []string
	for _, u := range list.Users {
		if len(u.RealName) >= 6 && strings.Trim(u.RealName, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ") == "" {
			names = append(names, u.RealName)
		}
	}
	if len(names) < 10 {
		b.Fatalf("only %d plain names among %d users", len(names), len(list.Users))
	}
	br := newBrowser(b)
	br.run(b, chromedp.Navigate(fmt.Sprintf("%s/?user=%s&team=%s", s.page, me.ID, me.Team)))
	br.waitJS(b, `document.querySelector('#conn-state')?.dataset.state === 'open'`, "the page to connect")
	br.run(b, chromedp.KeyEvent("k", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	br.waitJS(b, `document.activeElement?.id === 'switcher-input'`, "the switcher")
	keys := 0
	b.ResetTimer()
	for i := range b.N {
		name := names[i%len(names)]
		// A new name starts from an empty box, without a keystroke of its own to measure.
		br.run(b, chromedp.Evaluate[chromedp.Void](`document.querySelector('#switcher-input').value = ''`))
		typed := ""
		for _, r := range name {
			typed += string(r)
			br.run(b, chromedp.KeyEvent(string(r)))
			if strings.TrimSpace(typed) == "" {
				continue
			}
			br.waitJS(b, fmt.Sprintf(`document.querySelector('#switcher-results').dataset.query === %s`, jsString(typed)), "results for "+typed)
			keys++
		}
	}
	b.StopTimer()
	var lat []struct {
		Query   string  `json:"query"`
		MS      float64 `json:"ms"`
		DomMS   float64 `json:"domMs"`
		ReplyMS float64 `json:"replyMs"`
	}
	br.eval(b, `window.weftPage.switcherLatencies`, &lat)
	if len(lat) < keys {
		b.Fatalf("the page measured %d keystrokes of the %d typed", len(lat), keys)
	}
	var shown, dom, reply []float64
	for _, l := range lat {
		shown, dom, reply = append(shown, l.MS), append(dom, l.DomMS), append(reply, l.ReplyMS)
	}
	slices.Sort(shown)
	slices.Sort(dom)
	slices.Sort(reply)
	q := func(ms []float64, p float64) float64 { return ms[min(len(ms)-1, int(p*float64(len(ms))))] }
	b.ReportMetric(q(shown, 0.50), "p50-ms/key")
	b.ReportMetric(q(shown, 0.99), "p99-ms/key")
	b.ReportMetric(shown[len(shown)-1], "max-ms/key")
	b.ReportMetric(q(dom, 0.50), "dom-p50-ms/key")
	b.ReportMetric(q(dom, 0.99), "dom-p99-ms/key")
	b.ReportMetric(q(reply, 0.50), "reply-p50-ms/key")
	b.ReportMetric(q(reply, 0.99), "reply-p99-ms/key")
	b.ReportMetric(float64(len(shown)), "keys")
}

// TestClientInBrowserStopsOnRefusedToken: in a browser a refused WebSocket handshake shows
// nothing of why, so the client asks /api/ping with fetch; a bad token then stops it with
// invalid_auth instead of retrying until its deadline. Node's fetch forgives being called
// unbound and a browser's does not ("Illegal invocation"), which only a browser shows.
func TestClientInBrowserStopsOnRefusedToken(t *testing.T) {
	s := startDev(t, "tiny", 0)
	b := newBrowser(t)
	b.run(t, chromedp.Navigate(s.page+"/"))
	b.waitJS(t, `document.querySelector('#picker button')`, "the page")
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[map[string]any](`(async () => {
		const { WeftClient } = await import('/weft/client.js');
		const c = new WeftClient({ url: location.origin, token: 'not.a.token', connectTimeoutMs: 20000 });
		try { await c.start(); return { started: true }; }
		catch (e) { return { code: e.code ?? '', status: e.status ?? 0, state: c.state }; }
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if got["code"] != "invalid_auth" || got["state"] != "closed" {
		t.Fatalf("a client with a bad token in the browser ended with %v; want invalid_auth, closed", got)
	}
}
