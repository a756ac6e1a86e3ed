package client

import (
	"context"
	"encoding/json"
	"fmt"
)

// The methods of docs/protocol.md section 4. Each waits for a connection when the client is
// reconnecting (bounded by ctx) and returns the server's refusals as *Error. Objects in
// replies go into the Store, so a user fetched once is known to User afterwards.

// Call sends any method with params (nil: none) and decodes the result into result (nil:
// ignore it). The typed methods below are Call with the protocol's shapes.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	cn, err := c.current(ctx)
	if err != nil {
		return err
	}
	defer cn.users.Add(-1) // current raised it
	return callInto(ctx, cn, method, params, result)
}

func callInto(ctx context.Context, cn *conn, method string, params, result any) error {
	raw, err := cn.call(ctx, method, params)
	if err != nil {
		return err
	}
	if result == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("weft: %s result: %w", method, err)
	}
	return nil
}

// Boot calls boot: the caller, the team and the caller's channels. The client boots by itself
// after every connection that did not resume (see Options.SkipBoot); this is for a caller that
// wants a fresh one.
func (c *Client) CallBoot(ctx context.Context) (*Boot, error) {
	var b Boot
	if err := c.Call(ctx, "boot", nil, &b); err != nil {
		return nil, err
	}
	c.store.putUsers(b.Self)
	c.store.putTeam(b.Team)
	c.store.putChannels(b.Channels...)
	return &b, nil
}

// UsersInfo fetches up to 100 users.
func (c *Client) UsersInfo(ctx context.Context, ids ...string) (*UsersInfo, error) {
	var r UsersInfo
	if err := c.Call(ctx, "users.info", struct {
		Users []string `json:"users"`
	}{ids}, &r); err != nil {
		return nil, err
	}
	c.store.putUsers(r.Users...)
	return &r, nil
}

// UsersList fetches one page of the team's users; cursor "" starts, limit 0 is the server's
// default (200).
func (c *Client) UsersList(ctx context.Context, cursor string, limit int) (*UsersList, error) {
	var r UsersList
	if err := c.Call(ctx, "users.list", pageParams{Cursor: cursor, Limit: limit}, &r); err != nil {
		return nil, err
	}
	c.store.putUsers(r.Users...)
	return &r, nil
}

// ChannelsInfo fetches up to 100 channels; private channels the caller is not in are missing.
func (c *Client) ChannelsInfo(ctx context.Context, ids ...string) (*ChannelsInfo, error) {
	var r ChannelsInfo
	if err := c.Call(ctx, "channels.info", struct {
		Channels []string `json:"channels"`
	}{ids}, &r); err != nil {
		return nil, err
	}
	c.store.putChannels(r.Channels...)
	return &r, nil
}

// ChannelsMembers fetches one page of a channel's member IDs.
func (c *Client) ChannelsMembers(ctx context.Context, channel, cursor string, limit int) (*IDPage, error) {
	var r struct {
		Members    []string `json:"members"`
		NextCursor string   `json:"next_cursor"`
	}
	p := struct {
		Channel string `json:"channel"`
		pageParams
	}{channel, pageParams{cursor, limit}}
	if err := c.Call(ctx, "channels.members", p, &r); err != nil {
		return nil, err
	}
	return &IDPage{IDs: r.Members, NextCursor: r.NextCursor}, nil
}

// UsersChannels fetches one page of the channel IDs user is in ("": the caller), as far as the
// caller may see them.
func (c *Client) UsersChannels(ctx context.Context, user, cursor string, limit int) (*IDPage, error) {
	var r struct {
		Channels   []string `json:"channels"`
		NextCursor string   `json:"next_cursor"`
	}
	p := struct {
		User string `json:"user,omitempty"`
		pageParams
	}{user, pageParams{cursor, limit}}
	if err := c.Call(ctx, "users.channels", p, &r); err != nil {
		return nil, err
	}
	return &IDPage{IDs: r.Channels, NextCursor: r.NextCursor}, nil
}

// Autocomplete asks the Quick Switcher. Its results carry only names and labels, so they are
// not put in the Store.
func (c *Client) Autocomplete(ctx context.Context, q AutocompleteQuery) ([]AutocompleteResult, error) {
	var r struct {
		Results []AutocompleteResult `json:"results"`
	}
	if err := c.Call(ctx, "autocomplete", q, &r); err != nil {
		return nil, err
	}
	return r.Results, nil
}

// Ping does a round trip.
func (c *Client) Ping(ctx context.Context) error { return c.Call(ctx, "ping", nil, nil) }

type pageParams struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}
