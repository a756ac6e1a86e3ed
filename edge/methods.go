package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/protocol"
)

// A call is one method invocation, from a WebSocket request or from POST /api/<method>: the
// same handlers answer both. The caller's team and user come from the token only.
type call struct {
	ctx     context.Context // the session's or the HTTP request's: ends when the caller is gone
	team    string
	user    string
	store   *cache.Store
	cursors *cursors
	params  json.RawMessage
}

// cursor opens the paging cursor the caller sent for method over subject (cursors.go).
func (c *call) cursor(method, subject, cursor string) (string, *protocol.Error) {
	pos, ok := c.cursors.open(cursorScope{c.team, c.user, method, subject}, cursor)
	if !ok {
		return "", errBadCursor
	}
	return pos, nil
}

// next seals the store's cursor of the next page for the caller.
func (c *call) next(method, subject, pos string) string {
	return c.cursors.seal(cursorScope{c.team, c.user, method, subject}, pos)
}

// errBadCursor is the one answer to a cursor this caller was not handed for this page,
// whatever it names.
var errBadCursor = errorf(protocol.CodeInvalidRequest, "params.cursor is not a cursor this server handed out")

type method func(c *call) (any, *protocol.Error)

// methods is the table of docs/protocol.md section 4.
var methods = map[string]method{
	"autocomplete":     methodAutocomplete,
	"boot":             methodBoot,
	"users.info":       methodUsersInfo,
	"users.list":       methodUsersList,
	"channels.info":    methodChannelsInfo,
	"channels.members": methodChannelsMembers,
	"users.channels":   methodUsersChannels,
	"ping":             func(*call) (any, *protocol.Error) { return struct{}{}, nil },
}

// decodeParams reads params into v. Absent params read as {}; unknown fields are ignored;
// a wrong type is invalid_request naming the field.
func decodeParams(raw json.RawMessage, v any) *protocol.Error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errorf(protocol.CodeInvalidRequest, "params.%s must be %s", te.Field, te.Type)
		}
		return errorf(protocol.CodeInvalidRequest, "params must be an object: %v", err)
	}
	return nil
}

func checkIDs(field string, ids []string) *protocol.Error {
	if len(ids) < 1 || len(ids) > 100 {
		return errorf(protocol.CodeInvalidRequest, "params.%s must list 1 to 100 IDs, got %d", field, len(ids))
	}
	return nil
}

// page limits: default 200, at most 1000.
func pageLimit(limit *int) (int, *protocol.Error) {
	if limit == nil {
		return 200, nil
	}
	if *limit < 1 || *limit > 1000 {
		return 0, errorf(protocol.CodeInvalidRequest, "params.limit must be 1 to 1000, got %d", *limit)
	}
	return *limit, nil
}

func pageError(err error) *protocol.Error {
	switch {
	case errors.Is(err, cache.ErrNotFound):
		return errorf(protocol.CodeNotFound, "not found")
	case errors.Is(err, cache.ErrBadCursor):
		return errBadCursor
	}
	return errorf(protocol.CodeInternal, "%v", err)
}

type bootResult struct {
	Self     origin.User      `json:"self"`
	Team     origin.Team      `json:"team"`
	Channels []origin.Channel `json:"channels"`
	Seq      int64            `json:"seq"`
}

func methodBoot(c *call) (any, *protocol.Error) {
	self, team, chans, seq, err := c.store.Boot(c.user)
	if err != nil {
		return nil, errorf(protocol.CodeNotFound, "user %s is not in this team", c.user)
	}
	return bootResult{Self: self, Team: team, Channels: chans, Seq: seq}, nil
}

type usersInfoResult struct {
	Users   []origin.User `json:"users"`
	Missing []string      `json:"missing"`
}

func methodUsersInfo(c *call) (any, *protocol.Error) {
	var p struct {
		Users []string `json:"users"`
	}
	if e := decodeParams(c.params, &p); e != nil {
		return nil, e
	}
	if e := checkIDs("users", p.Users); e != nil {
		return nil, e
	}
	found, missing := c.store.Users(p.Users)
	return usersInfoResult{Users: found, Missing: nonNil(missing)}, nil
}

type usersListResult struct {
	Users      []origin.User `json:"users"`
	NextCursor string        `json:"next_cursor"`
}

func methodUsersList(c *call) (any, *protocol.Error) {
	var p struct {
		Cursor string `json:"cursor"`
		Limit  *int   `json:"limit"`
	}
	if e := decodeParams(c.params, &p); e != nil {
		return nil, e
	}
	limit, e := pageLimit(p.Limit)
	if e != nil {
		return nil, e
	}
	pos, e := c.cursor("users.list", "", p.Cursor)
	if e != nil {
		return nil, e
	}
	users, next, err := c.store.UsersPage(pos, limit)
	if err != nil {
		return nil, pageError(err)
	}
	return usersListResult{Users: users, NextCursor: c.next("users.list", "", next)}, nil
}

type channelsInfoResult struct {
	Channels []origin.Channel `json:"channels"`
	Missing  []string         `json:"missing"`
}

func methodChannelsInfo(c *call) (any, *protocol.Error) {
	var p struct {
		Channels []string `json:"channels"`
	}
	if e := decodeParams(c.params, &p); e != nil {
		return nil, e
	}
	if e := checkIDs("channels", p.Channels); e != nil {
		return nil, e
	}
	found, missing := c.store.Channels(p.Channels, c.user)
	return channelsInfoResult{Channels: found, Missing: nonNil(missing)}, nil
}

type membersResult struct {
	Members    []string `json:"members"`
	NextCursor string   `json:"next_cursor"`
}

func methodChannelsMembers(c *call) (any, *protocol.Error) {
	var p struct {
		Channel string `json:"channel"`
		Cursor  string `json:"cursor"`
		Limit   *int   `json:"limit"`
	}
	if e := decodeParams(c.params, &p); e != nil {
		return nil, e
	}
	if p.Channel == "" {
		return nil, errorf(protocol.CodeInvalidRequest, "params.channel is required")
	}
	limit, e := pageLimit(p.Limit)
	if e != nil {
		return nil, e
	}
	pos, e := c.cursor("channels.members", p.Channel, p.Cursor)
	if e != nil {
		return nil, e
	}
	members, next, err := c.store.ChannelMembers(p.Channel, c.user, pos, limit)
	if err != nil {
		return nil, pageError(err)
	}
	return membersResult{Members: members, NextCursor: c.next("channels.members", p.Channel, next)}, nil
}

type userChannelsResult struct {
	Channels   []string `json:"channels"`
	NextCursor string   `json:"next_cursor"`
}

func methodUsersChannels(c *call) (any, *protocol.Error) {
	var p struct {
		User   string `json:"user"`
		Cursor string `json:"cursor"`
		Limit  *int   `json:"limit"`
	}
	if e := decodeParams(c.params, &p); e != nil {
		return nil, e
	}
	if p.User == "" {
		p.User = c.user
	}
	limit, e := pageLimit(p.Limit)
	if e != nil {
		return nil, e
	}
	pos, e := c.cursor("users.channels", p.User, p.Cursor)
	if e != nil {
		return nil, e
	}
	chans, next, err := c.store.UserChannels(p.User, c.user, pos, limit)
	if err != nil {
		return nil, pageError(err)
	}
	return userChannelsResult{Channels: chans, NextCursor: c.next("users.channels", p.User, next)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// invoke runs method name and returns its result encoded as JSON. It never panics outward: a
// handler bug becomes an internal error for this one call.
func invoke(name string, c *call) (result []byte, e *protocol.Error) {
	result, _, e = invokeValue(name, c)
	return result, e
}

// invokeValue is invoke that also returns the result before encoding (what a session records
// as sent, for annotations).
func invokeValue(name string, c *call) (result []byte, value any, e *protocol.Error) {
	m, ok := methods[name]
	if !ok {
		return nil, nil, errorf(protocol.CodeUnknownMethod, "unknown method %q", name)
	}
	defer func() {
		if r := recover(); r != nil {
			result, value, e = nil, nil, errorf(protocol.CodeInternal, "method %s failed", name)
		}
	}()
	res, e := m(c)
	if e != nil {
		return nil, nil, e
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, nil, errorf(protocol.CodeInternal, "encode %s: %v", name, fmt.Sprint(err))
	}
	return b, res, nil
}
