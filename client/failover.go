package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
)

// Several URLs (Options.URLs, docs/protocol.md section 5 "Several URLs"): the client moves to
// the next URL when one is unreachable, and while it is away from the first it tries, now
// and then, to go back, making the connection there before leaving the one it has.

// Switch is a move of the client from one of Options.URLs to another.
type Switch struct {
	// From and To index Options.URLs; 0 is the first, the home URL.
	From, To int
	// URL is Options.URLs[To], normalised as the client dials it.
	URL string
	// Err is why the client left From: a dial there found nothing of weft answering. Nil for
	// a return to the first URL, which is made only once a connection there is up.
	Err error
}

// Return is the schedule of a client's attempts to go back to its first URL while it is
// connected to another: before its n-th attempt it waits a random time in [w/2, w), w being
// min(Max, Min·2ⁿ). Half the window is a floor, so that a client does not come straight back to
// a region that has just failed, and the other half is jitter, so that the clients of a region
// that recovers come back spread over the window instead of in one wave. The zero value means
// the defaults.
type Return struct {
	// Min is the window of the first attempt; default 10s.
	Min time.Duration
	// Max caps the window; default 2m.
	Max time.Duration
}

func (r Return) withDefaults() Return {
	if r.Min <= 0 {
		r.Min = 10 * time.Second
	}
	if r.Max <= 0 {
		r.Max = 2 * time.Minute
	}
	if r.Max < r.Min {
		r.Max = r.Min
	}
	return r
}

// delay is how long to wait before return attempt n (0 for the first).
func (r Return) delay(n int, rng *rand.Rand) time.Duration {
	w := Backoff{Min: r.Min, Max: r.Max}.window(n)
	return w/2 + jitter(rng, w-w/2)
}

// parseURLs reads Options.URL or Options.URLs, exactly one of which is set, into the URLs the
// client dials, in order. A single URL keeps parseURL's errors as they were.
func parseURLs(one string, list []string) ([]url.URL, error) {
	switch {
	case one != "" && len(list) > 0:
		return nil, errors.New("weft: set Options.URL or Options.URLs, not both")
	case one == "" && len(list) == 0:
		return nil, errors.New("weft: Options.URL or Options.URLs is required")
	case len(list) == 0:
		u, err := parseURL(one)
		if err != nil {
			return nil, err
		}
		return []url.URL{*u}, nil
	}
	out := make([]url.URL, 0, len(list))
	seen := make(map[string]int, len(list))
	for i, raw := range list {
		if strings.TrimSpace(raw) == "" {
			return nil, fmt.Errorf("weft: Options.URLs[%d] is empty", i)
		}
		u, err := normalURL(raw)
		if err != nil {
			return nil, fmt.Errorf("weft: Options.URLs[%d]: %w", i, err)
		}
		// Two spellings of one endpoint (http:// and ws://, with and without /ws) would make a
		// failover that goes nowhere: the list is an error, not a silent duplicate.
		key := u.Scheme + "://" + strings.ToLower(u.Host) + u.Path + "?" + u.RawQuery
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("weft: Options.URLs[%d] %q is Options.URLs[%d] %q again", i, raw, j, list[j])
		}
		seen[key] = i
		out = append(out, *u)
	}
	return out, nil
}

// URL returns which of its URLs the client uses: the current connection's or, while it
// reconnects, the one it dials next. i indexes Options.URLs (0 when Options.URL was given).
func (c *Client) URL() (i int, u string) {
	i = int(c.at.Load())
	return i, c.urls[i].String()
}

// failover moves the run loop's target to the next URL after a dial that found nothing of weft
// at the current one (dialError.unreachable); past the last it wraps to the first.
func (c *Client) failover(why error) {
	from := int(c.at.Load())
	to := (from + 1) % len(c.urls)
	c.at.Store(int32(to))
	c.stats.failovers.Add(1)
	c.log.Warn("weft: URL unreachable, moving to the next", "from", c.urls[from].Redacted(),
		"to", c.urls[to].Redacted(), "error", why)
	if c.opts.OnSwitch != nil {
		c.opts.OnSwitch(Switch{From: from, To: to, URL: c.urls[to].String(), Err: why})
	}
}

// returned records the move home: the run loop is about to serve home, a connection to the first
// URL made while it served from, which it has closed.
func (c *Client) returned(from int) {
	c.at.Store(0)
	c.stats.returns.Add(1)
	c.log.Info("weft: back on the first URL", "from", c.urls[from].Redacted(), "to", c.urls[0].Redacted())
	if c.opts.OnSwitch != nil {
		c.opts.OnSwitch(Switch{From: from, To: 0, URL: c.urls[0].String()})
	}
}

// returner tries to connect to the first URL while the run loop serves a connection to another.
// The run loop starts one for each such connection and stops it when that connection ends.
type returner struct {
	cancel context.CancelFunc
	done   chan struct{}
	home   chan *conn // the connection it made; capacity 1, so it never blocks
}

func (c *Client) startReturn() *returner {
	ctx, cancel := context.WithCancel(c.ctx)
	r := &returner{cancel: cancel, done: make(chan struct{}), home: make(chan *conn, 1)}
	go func() {
		defer close(r.done)
		if cn := c.returnHome(ctx); cn != nil {
			r.home <- cn
		}
	}()
	return r
}

// stop ends the returner and hands over the connection it made that nobody took (it came as the
// connection it was to replace ended), nil if none.
func (r *returner) stop() *conn {
	r.cancel()
	<-r.done
	select {
	case cn := <-r.home:
		return cn
	default:
		return nil
	}
}

// returnHome dials the first URL on the Return schedule, resuming after the position the client
// has when it dials, until one dial gives a hello. It returns that connection, not yet read
// from, or nil when ctx ended first. Any failure, a refusal from a weft that is up but busy as
// much as a refused TCP connection, only means "not yet": the client stays where it is.
//
// The attempt count lives in the Client (c.returnTries) and the schedule goes on across the
// connections of one stay away: a flapping connection to the other URL does not restart it at
// the shortest window. Only this goroutine touches returnTries and returnRng while it runs; the
// run loop resets the count, between returners, once it is home.
func (c *Client) returnHome(ctx context.Context) *conn {
	var hint time.Duration // what the last refusal said about coming back
	for {
		d := max(c.opts.Return.delay(c.returnTries, c.returnRng), hint)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		c.returnTries++
		cn, err := c.dial(ctx, 0, c.pos.Load(), true)
		if err == nil {
			return cn
		}
		if ctx.Err() != nil {
			return nil
		}
		hint = 0
		var de *dialError
		if errors.As(err, &de) {
			hint = de.hint.after
		}
		c.log.Info("weft: first URL not back yet", "url", c.urls[0].Redacted(), "attempt", c.returnTries, "error", err)
	}
}

// redactedURLs names the client's URLs for an error message.
func (c *Client) redactedURLs() string {
	names := make([]string, len(c.urls))
	for i := range c.urls {
		names[i] = c.urls[i].Redacted()
	}
	return strings.Join(names, ", ")
}
