package origin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// The listings in every form the contract has (docs/origin.md, "Fewer round trips"): one
// request, whose pages are handed to a function as they are decoded. A plain request answers
// one page; a streamed one (ListRequest.Stream) every page from its cursor on, one per line;
// either may be one partition of the listing. The caller walks on from the last page's cursor:
// cache.Snapshot does, with the checks of a walk (repeated cursors, endless listings).

// ListUsers asks for users of team as r says and hands each page to page, in order. An error of
// page ends the request and is returned as it is.
func (c *Client) ListUsers(ctx context.Context, team string, r ListRequest, page func(*UsersPage) error) error {
	return c.list(ctx, "users", team, "/users", r, func(b []byte) (bool, error) {
		p, err := DecodeUsersPage(team, b, r.Limit)
		if err != nil {
			return false, err
		}
		return p.NextCursor == "", callerErr(page(p))
	})
}

// ListChannels asks for channels of team, as ListUsers.
func (c *Client) ListChannels(ctx context.Context, team string, r ListRequest, page func(*ChannelsPage) error) error {
	return c.list(ctx, "channels", team, "/channels", r, func(b []byte) (bool, error) {
		p, err := DecodeChannelsPage(team, b, r.Limit)
		if err != nil {
			return false, err
		}
		return p.NextCursor == "", callerErr(page(p))
	})
}

// ListMemberships asks for memberships of team, as ListUsers.
func (c *Client) ListMemberships(ctx context.Context, team string, r ListRequest, page func(*MembershipsPage) error) error {
	return c.list(ctx, "memberships", team, "/memberships", r, func(b []byte) (bool, error) {
		p, err := DecodeMembershipsPage(team, b, r.Limit)
		if err != nil {
			return false, err
		}
		return p.NextCursor == "", callerErr(page(p))
	})
}

// callerError carries an error of the caller's page function through list unchanged: it is not
// the origin's bad answer (though it may say so itself) and is not wrapped again.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

func callerErr(err error) error {
	if err == nil {
		return nil
	}
	return &callerError{err}
}

func listQuery(r ListRequest) url.Values {
	q := pageQuery(r.Cursor, r.Limit)
	if r.Partitions > 1 {
		q.Set("partition", strconv.Itoa(r.Partition))
		q.Set("partitions", strconv.Itoa(r.Partitions))
	}
	if r.Stream {
		q.Set("stream", "1")
	}
	return q
}

// list performs one listing request through the Guard. Timeout bounds the wait for each page,
// not the whole answer: a streamed listing of a giant team takes longer than any one page
// should. An answer that is not StreamType is one page (the plain form, or an origin or a
// proxy in between that ignored stream=1).
func (c *Client) list(ctx context.Context, op, team, path string, r ListRequest, line func([]byte) (last bool, err error)) error {
	u := *c.base
	u.Path += teamPath(team) + path
	u.RawPath = ""
	u.RawQuery = listQuery(r).Encode()
	target := u.String()
	accept := "application/json"
	if r.Stream {
		accept = StreamType + ", application/json"
	}
	run := func(parent context.Context) error {
		ctx, cancel := context.WithCancel(parent)
		defer cancel()
		var idle atomic.Bool
		timer := time.AfterFunc(c.cfg.Timeout, func() { idle.Store(true); cancel() })
		defer timer.Stop()
		fail := func(status int, err error) error {
			var ce *callerError
			switch {
			case errors.As(err, &ce):
				return ce.err
			case parent.Err() != nil:
				return fmt.Errorf("origin: %s %s: %w", op, team, parent.Err())
			case errors.Is(err, ErrBadResponse):
				return &Error{Op: op, Team: team, Status: status, Kind: ErrBadResponse, Err: err}
			case idle.Load():
				return &Error{Op: op, Team: team, Status: status, Kind: ErrTimeout, Err: fmt.Errorf("no page within %v", c.cfg.Timeout)}
			}
			return c.classify(ctx, op, team, status, err)
		}
		resp, err := c.do(ctx, target, accept)
		if err != nil {
			return fail(0, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fail(resp.StatusCode, statusError(resp))
		}
		if !isStream(resp.Header.Get("Content-Type")) {
			body, err := c.readBody(resp.Body)
			if err == nil {
				_, err = line(body)
			}
			if err != nil {
				return fail(resp.StatusCode, err)
			}
			return nil
		}
		_, err = readStream(resp.Body, c.cfg.MaxBodyBytes, func(b []byte) (bool, error) {
			timer.Reset(c.cfg.Timeout)
			return line(b)
		})
		if err != nil {
			return fail(resp.StatusCode, err)
		}
		return nil
	}
	return c.guard(ctx, run)
}
