package index_test

import (
	"fmt"
	"strings"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/origin"
)

// The query and event generators of TestDifferential.

// ---- queries ----

func (d *diffRun) pick(weights ...int) int {
	n := d.rng.IntN(sum(weights))
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	panic("unreachable")
}

func sum(xs []int) (n int) {
	for _, x := range xs {
		n += x
	}
	return n
}

// prefixOf returns the first n letters (runes) of w.
func prefixOf(w string, n int) string {
	r := []rune(w)
	return string(r[:min(n, len(r))])
}

func (d *diffRun) randomUser() *refObj { return &d.ref.users[d.rng.IntN(len(d.ref.users))] }
func (d *diffRun) randomChan() *refObj { return &d.ref.chans[d.rng.IntN(len(d.ref.chans))] }

func (d *diffRun) randomWord(o *refObj) string { return o.words[d.rng.IntN(len(o.words))] }

// query makes one random query and says what kind it is.
func (d *diffRun) query() (index.Query, string) {
	s := d.ref
	q := index.Query{Caller: d.randomUser().id}
	var kind string
	boundary := false // a probe of the recent ring's oldest end: no affinity to crowd it out
	switch d.pick(44, 10, 16, 12, 6, 2, 10) {
	case 0: // a 1–4 letter prefix of a word of a random user or channel
		o := d.randomUser()
		if d.rng.IntN(10) < 3 {
			o = d.randomChan()
		}
		n := 1 + d.pick(28, 32, 15, 25)
		kind = fmt.Sprintf("%d-letter", n)
		if !o.ch && d.rng.IntN(5) == 0 {
			// Straight from the real name: case and accents as typed ("Zo", "Nú").
			q.Text = prefixOf(strings.TrimSpace(o.realNm), n)
			kind += " raw"
		} else {
			q.Text = prefixOf(d.randomWord(o), n)
		}
	case 1: // a whole word, the shortest of a random user's: many are whole words of thousands
		o := d.randomUser()
		w := o.words[0]
		for _, x := range o.words {
			if len([]rune(x)) < len([]rune(w)) {
				w = x
			}
		}
		q.Text, kind = w, "whole-word"
	case 2: // first name + 1–3 letters of the last name
		o := d.randomUser()
		ws := index.Words(o.realNm)
		if len(ws) < 2 {
			ws = append(ws, d.randomWord(d.randomUser()))
		}
		first, last := ws[0], prefixOf(ws[len(ws)-1], 1+d.rng.IntN(3))
		if d.rng.IntN(4) == 0 {
			first = prefixOf(first, 1+d.rng.IntN(2)) // short and short: the bucketed path
		}
		q.Text = first + []string{" ", " ", ".", "-", "  "}[d.rng.IntN(5)] + last
		kind = "multi-word"
	case 3: // a 1–2 letter prefix of a recently active object's name, often the oldest one
		ring := d.subjects[d.rng.IntN(len(d.subjects))].ring
		n := ring.next
		if ring.full {
			n = len(ring.ids)
		}
		if n == 0 {
			q.Text, kind = prefixOf(d.randomWord(d.randomUser()), 1), "1-letter"
			break
		}
		id := ring.ids[(ring.next-1-d.rng.IntN(n)+len(ring.ids))%len(ring.ids)]
		kind = "recent"
		if ring.full && d.rng.IntN(2) == 0 {
			// The boundary: the sender or the channel of the oldest message still counted as
			// recent, preferably one whose own entry has left the ring already.
			id, kind, boundary = d.msgs[ring.seqs[ring.next]][d.rng.IntN(2)], "recent-boundary", true
			for _, sub := range d.subjects {
				if evicted := sub.ring.evictedAtFloor(d.msgs); evicted != "" {
					id = evicted
				}
			}
		}
		o := s.byID[objRef{"user", id}]
		if o == nil {
			o = s.byID[objRef{"channel", id}]
		}
		q.Text = prefixOf(d.randomWord(o), 1+d.rng.IntN(2))
		if boundary || d.rng.IntN(2) == 0 {
			q.Caller = diffNobody // nothing outranks the recent ones
		}
	case 4: // a private channel's name, asked by a member or not
		var priv []*refObj
		for i := range s.chans {
			if c := &s.chans[i]; c.private && !c.deleted {
				priv = append(priv, c)
			}
		}
		c := priv[d.rng.IntN(len(priv))]
		if d.rng.IntN(3) > 0 && s.memberCount(c.idx) > 0 {
			m := s.memberIDs[c.idx]
			q.Caller = m[d.rng.IntN(len(m))]
		}
		q.Text, kind = prefixOf(d.randomWord(c), 1+d.rng.IntN(4)), "private-channel"
	case 5: // no words at all
		q.Text, kind = []string{"", "  ", "-._", " . "}[d.rng.IntN(4)], "empty"
	case 6: // a renamed object: its new words (often new terms) or a word it no longer has
		if len(d.renamed) == 0 {
			q.Text, kind = prefixOf(d.randomWord(d.randomUser()), 3), "3-letter"
			break
		}
		rn := d.renamed[d.rng.IntN(len(d.renamed))]
		n := 1 + d.pick(15, 25, 30, 30)
		if d.rng.IntN(3) == 0 {
			q.Text, kind = prefixOf(rn.old, n), fmt.Sprintf("renamed %s, old word", rn.ref.id)
		} else {
			q.Text, kind = prefixOf(d.randomWord(s.byID[rn.ref]), n), fmt.Sprintf("renamed %s", rn.ref.id)
		}
	}
	if q.Text != "" && d.rng.IntN(6) == 0 {
		q.Text = strings.ToUpper(q.Text)
	}
	callers := d.pick(70, 10, 10, 10)
	if boundary {
		callers = 0
	}
	switch callers {
	case 1:
		q.Caller = diffNobody
	case 2: // a member of the channel at the affinity size limit
		if ci := s.byID[objRef{"channel", d.edge}].idx; s.memberCount(ci) > 0 {
			m := s.memberIDs[ci]
			q.Caller = m[d.rng.IntN(len(m))]
		}
	case 3: // a deactivated user
		for range 100 {
			if u := d.randomUser(); u.deleted {
				q.Caller = u.id
				break
			}
		}
	}
	q.Limit = []int{1, 10, 50, 0, 75}[d.pick(30, 35, 25, 5, 5)]
	if boundary && q.Limit == 1 {
		q.Limit = 10 // room for the more recent matches above it
	}
	q.IncludeInactive = d.rng.IntN(4) == 0
	switch d.pick(60, 15, 15, 10) {
	case 1:
		q.Users = true
	case 2:
		q.Channels = true
	case 3:
		q.Users, q.Channels = true, true
	}
	return q, kind
}

// ---- events ----

// feed applies ev as the team's feed does: to the store, then to every index.
func (d *diffRun) feed(ev *origin.Event) {
	d.seq++
	ev.Team, ev.Seq = d.team, d.seq
	ch, ok := d.st.ApplyEvent(ev)
	if !ok {
		d.t.Fatalf("store refused event %+v", ev)
	}
	for _, s := range d.subjects {
		s.x.Apply(ev, ch)
	}
}

// pickEdge chooses the live channel whose size is closest to the affinity limit.
func (d *diffRun) pickEdge() {
	best := -1
	for ci := 1; ci < len(d.ref.chans); ci++ {
		if d.ref.chans[ci].deleted {
			continue
		}
		dist := abs(d.ref.memberCount(int32(ci)) - d.ref.affMax)
		if best < 0 || dist < abs(d.ref.memberCount(int32(best))-d.ref.affMax) {
			best = ci
		}
	}
	d.edge = d.ref.chans[best].id
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

var (
	diffSyllables = []string{"ja", "jo", "ma", "li", "an", "zo", "el", "ri", "ta", "su", "no", "vi",
		"ha", "be", "wu", "ki", "sa", "mi", "lu", "da"}
	diffAccented = []string{"Jö", "Ña", "Łu", "Zoë", "Émi", "Ås", "Çe", "Øy"}
)

// invent makes a name word: often a new term, sharing its first letters with common ones.
func (d *diffRun) invent() string {
	var b strings.Builder
	if d.rng.IntN(4) == 0 {
		b.WriteString(diffAccented[d.rng.IntN(len(diffAccented))])
	}
	for range 1 + d.rng.IntN(3) {
		b.WriteString(diffSyllables[d.rng.IntN(len(diffSyllables))])
	}
	w := b.String()
	if d.rng.IntN(2) == 0 {
		w = strings.ToUpper(w[:1]) + w[1:]
	}
	return w
}

// liveChannel returns a random channel that is not deleted (never #general, whose size is the
// team), with its current state.
func (d *diffRun) liveChannel() origin.Channel {
	for {
		id := d.ref.chans[1+d.rng.IntN(len(d.ref.chans)-1)].id
		if _, c, deleted, ok := d.st.ChannelAt(id); ok && !deleted {
			return c
		}
	}
}

// churn feeds n events (and a few more to move the edge channel across the affinity limit).
func (d *diffRun) churn(n int) {
	for range n {
		switch d.pick(40, 12, 5, 7, 4, 2, 12, 8) {
		case 0: // a message: its sender and channel become recently active
			u, c := d.randomUser().id, d.liveChannel().ID
			d.feed(&origin.Event{Type: origin.EventMessage, UserID: u, ChannelID: c, Text: "hi"})
			d.last[u], d.last[c] = d.seq, d.seq
			d.msgs[d.seq] = [2]string{u, c}
			for _, s := range d.subjects {
				s.ring.push(u, d.seq)
				s.ring.push(c, d.seq)
			}
		case 1: // a user renamed: new words, another user's name, or a field emptied
			o := d.randomUser()
			u, ok := d.st.User(o.id)
			if !ok {
				d.t.Fatal("store lost a user")
			}
			d.renamed = append(d.renamed, renamed{objRef{"user", o.id}, d.randomWord(o)})
			switch d.rng.IntN(5) {
			case 0:
				u.RealName = d.invent() + " " + d.invent()
			case 1:
				u.DisplayName = d.invent()
			case 2:
				u.DisplayName = ""
			case 3: // the same label as someone else: the ID breaks the tie
				o := d.randomUser()
				u.RealName, u.DisplayName = o.realNm, o.display
			case 4:
				u.Name = strings.ToLower(d.invent()) + "." + strings.ToLower(d.invent())
			}
			u.Updated++
			d.feed(&origin.Event{Type: origin.EventUserChange, User: &u})
		case 2: // deactivated, or back
			u, _ := d.st.User(d.randomUser().id)
			u.Deleted = !u.Deleted
			u.Updated++
			d.feed(&origin.Event{Type: origin.EventUserChange, User: &u})
		case 3: // a channel renamed
			c := d.liveChannel()
			if old := index.Words(c.Name); len(old) > 0 {
				d.renamed = append(d.renamed, renamed{objRef{"channel", c.ID}, old[d.rng.IntN(len(old))]})
			}
			c.Name = strings.ToLower(d.invent()) + "-" + strings.ToLower(d.invent())
			if d.rng.IntN(3) == 0 {
				c.Name = strings.ToLower(d.invent())
			}
			c.Updated++
			d.feed(&origin.Event{Type: origin.EventChannelChange, Channel: &c})
		case 4: // archived, or back
			c := d.liveChannel()
			c.IsArchived = !c.IsArchived
			c.Updated++
			d.feed(&origin.Event{Type: origin.EventChannelChange, Channel: &c})
		case 5: // deleted
			c := d.liveChannel()
			if c.ID == d.edge {
				continue
			}
			d.feed(&origin.Event{Type: origin.EventChannelDeleted, ChannelID: c.ID, Updated: c.Updated + 1})
		case 6: // someone joins a channel, most often a small one
			c := d.liveChannel()
			d.feed(&origin.Event{Type: origin.EventMemberJoined, ChannelID: c.ID, UserID: d.randomUser().id,
				Updated: 1_000_000 + d.seq})
		case 7: // someone leaves one
			c := d.liveChannel()
			if m := d.st.Members(c.ID); len(m) > 0 {
				d.feed(&origin.Event{Type: origin.EventMemberLeft, ChannelID: c.ID, UserID: m[d.rng.IntN(len(m))],
					Updated: 1_000_000 + d.seq})
			}
		}
	}
	// The edge channel crosses the affinity limit each round, one way then the other.
	d.edgeUp = !d.edgeUp
	members := d.st.Members(d.edge)
	if d.edgeUp {
		for len(members) <= d.ref.affMax {
			u := d.randomUser().id
			if d.st.IsMember(d.edge, u) {
				continue
			}
			d.feed(&origin.Event{Type: origin.EventMemberJoined, ChannelID: d.edge, UserID: u, Updated: 1_000_000 + d.seq})
			members = append(members, u)
		}
	} else {
		for k := len(members) - 1; k >= d.ref.affMax; k-- {
			d.feed(&origin.Event{Type: origin.EventMemberLeft, ChannelID: d.edge, UserID: members[k], Updated: 1_000_000 + d.seq})
		}
	}
}
