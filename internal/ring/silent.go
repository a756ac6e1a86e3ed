package ring

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Silent edges and their probes.
//
// Announcements travel through NATS. When NATS goes away every edge falls silent at once,
// although every one of them still serves its warm teams; dropping them all after the TTL
// empties the ring, and the proxy answers overloaded for every team. So with a Probe an edge
// whose announcements are overdue is asked directly, once per announcement interval (the
// cadence it announces at), and stays while it answers: the ring is the last one heard, kept
// by the probes. An edge that answers no probe leaves as it would have without them, once
// silent for its TTL. When announcements resume they take over with no ring change: the edge
// set did not change.
//
// The answer to a probe is what the edge would announce now, taken as an announcement is
// (take): a draining edge leaves the ring, an edge over its memory budget stays but admits
// nothing, its load figures stay fresh, and a restarted edge (a new Started under the same
// name at the same address) is the same member in a new life, so it stays too: its teams are
// cold after a restart whichever edge owns them, and keeping it spares two ring changes (out,
// and in again when it is heard) that would move teams twice. An answer from another node or
// another address counts as no answer: some other process listens where the edge was.

// lastSign is the last time e was heard from: an announcement or a probe answer.
func lastSign(e *edgeState) time.Time {
	if e.answered.After(e.seen) {
		return e.answered
	}
	return e.seen
}

// interval is how often e announces.
func interval(e *edgeState) time.Duration {
	return time.Duration(e.a.IntervalMS) * time.Millisecond
}

// overdue is how long e may go unheard before it is probed: two intervals (one missed
// announcement is ordinary jitter), at most half its TTL, so that a few probes are tried
// before the TTL is up.
func (m *Membership) overdue(e *edgeState) time.Duration {
	return min(2*interval(e), m.ttl(e)/2)
}

// probeDue reports whether e should be probed now: it is overdue, it was not asked within
// its interval, and no probe of it is under way. Edges that announce normally never are.
// m.mu held.
func (m *Membership) probeDue(e *edgeState, now time.Time) bool {
	return !e.static && !e.probing && now.Sub(e.seen) > m.overdue(e) && now.Sub(e.asked) >= interval(e)
}

// keptByProbes reports whether e is silent past its TTL, in the ring only because of probes.
func (m *Membership) keptByProbes(e *edgeState, now time.Time) bool {
	return m.cfg.Probe != nil && !e.static && now.Sub(e.seen) > m.ttl(e)
}

// noteKept returns keptByProbes, and logs when that changed for node. m.mu held.
func (m *Membership) noteKept(node string, e *edgeState, now time.Time) bool {
	kept := m.keptByProbes(e, now)
	if kept != e.kept {
		e.kept = kept
		if kept {
			m.log.Warn("edge not heard for its TTL; kept in the ring while it answers probes", "edge", node,
				"silent", now.Sub(e.seen).Round(time.Millisecond))
		} else {
			m.log.Info("edge heard again; its announcements take over from the probes", "edge", node)
		}
	}
	return kept
}

// logProbed logs when the ring starts or stops being kept by probes. m.mu held.
func (m *Membership) logProbed(old, v *View) {
	switch {
	case len(old.Probed) == 0 && len(v.Probed) > 0:
		// Every edge at once is the signature of this watcher's own NATS being away.
		m.log.Warn("routing on a ring kept by probes: edges not heard on their announcements (is NATS down?)",
			"probed", strings.Join(v.Probed, ","), "edges", len(v.Edges))
	case len(old.Probed) > 0 && len(v.Probed) == 0:
		m.log.Info("no edge kept by probes any more: routing on announcements", "edges", len(v.Edges), "version", v.Version)
	}
}

// ProbeSilent probes every silent edge due a probe (as many as free slots allow) and returns
// when those probes have ended: what Run does at every tick, without the wait. Tests drive
// probing with it and a fake clock.
func (m *Membership) ProbeSilent(ctx context.Context) {
	var wg sync.WaitGroup
	m.startProbes(ctx, &wg)
	wg.Wait()
}

// startProbes starts a probe of every edge due one while slots are free; wg tracks them.
// Edges whose last probe was answered go first: when slots run short (many edges gone at
// once, each probe waiting for its timeout), the ones still there are not kept waiting
// behind them.
func (m *Membership) startProbes(ctx context.Context, wg *sync.WaitGroup) {
	if m.cfg.Probe == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	var due []*edgeState
	for _, e := range m.edges {
		if m.probeDue(e, now) {
			due = append(due, e)
		}
	}
	slices.SortFunc(due, func(a, b *edgeState) int {
		if a.failing != b.failing {
			if b.failing {
				return -1
			}
			return 1
		}
		return strings.Compare(a.a.Node, b.a.Node)
	})
	for _, e := range due {
		select {
		case m.slots <- struct{}{}:
		default:
			return // the rest at the next round
		}
		e.probing, e.asked = true, now
		wg.Add(1)
		go m.probe(ctx, wg, e, e.a, now)
	}
}

// probe asks the edge of e, last being what it said last, and takes the answer.
func (m *Membership) probe(ctx context.Context, wg *sync.WaitGroup, e *edgeState, last Announcement, asked time.Time) {
	defer wg.Done()
	defer func() { <-m.slots }()
	pctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
	a, err := m.cfg.Probe(pctx, last)
	cancel()
	if err == nil {
		err = checkAnswer(last, a)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.edges[last.Node] != e {
		return // it left (or left and came back) meanwhile: the answer speaks of no member
	}
	e.probing = false
	if ctx.Err() != nil {
		return // the watcher is stopping: no verdict on the edge
	}
	if e.seen.After(asked) {
		// Heard since: the announcement is the edge's word, and may be newer than the answer
		// (a drain announced while the answer was on its way must not be undone).
		return
	}
	if err != nil {
		e.failed = asked
		if !e.failing {
			e.failing = true
			m.log.Warn("silent edge does not answer probes; it leaves once silent for its TTL", "edge", last.Node,
				"addr", last.Addr, "err", err)
		}
		return
	}
	if e.failing {
		e.failing = false
		m.log.Info("silent edge answers probes again", "edge", last.Node)
	}
	if !a.Started.Equal(last.Started) {
		m.log.Warn("silent edge restarted (a new life, its teams cold); it stays in the ring", "edge", last.Node,
			"started", a.Started)
	}
	m.take(e, a)
	e.answered = m.cfg.Now()
	m.rebuild()
}

// checkAnswer reports what makes a no answer from the edge last describes.
func checkAnswer(last, a Announcement) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.Node != last.Node || a.Addr != last.Addr {
		return fmt.Errorf("probe: %s answered as %s at %s: another process listens there", last.Addr, a.Node, a.Addr)
	}
	return nil
}
