package origin

import (
	"encoding/json"
	"fmt"
)

// The decoders below turn one origin response body into checked values. They are the only
// place origin bytes become weft objects, so everything a misbehaving origin can send is
// refused here with ErrBadResponse (and fuzzed in decode_fuzz_test.go): malformed JSON, objects
// of another team, missing or negative versions, more rows than were asked for.

// maxIDLen bounds the IDs weft will intern; Slack's are 9–11 characters.
const maxIDLen = 255

// maxCursorLen bounds an origin cursor echoed back into the next request.
const maxCursorLen = 4096

func badResponse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadResponse, fmt.Sprintf(format, args...))
}

func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return badResponse("malformed JSON: %v", err)
	}
	return nil
}

func checkID(kind, id string) error {
	if id == "" || len(id) > maxIDLen {
		return badResponse("%s id %q: empty or longer than %d bytes", kind, truncate(id), maxIDLen)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func checkPage(rows, limit int, cursor string) error {
	if limit > 0 && rows > limit {
		return badResponse("page of %d rows where at most %d were asked", rows, limit)
	}
	if len(cursor) > maxCursorLen {
		return badResponse("next_cursor of %d bytes", len(cursor))
	}
	return nil
}

// DecodeTeamInfo decodes GET /origin/v1/teams/{team}.
func DecodeTeamInfo(team string, data []byte) (*TeamInfo, error) {
	var ti TeamInfo
	if err := decodeJSON(data, &ti); err != nil {
		return nil, err
	}
	if err := ti.Team.Validate(team); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if ti.Seq < 0 {
		return nil, badResponse("team %s: negative seq %d", team, ti.Seq)
	}
	if l := ti.Listings; l != nil {
		for _, p := range []struct {
			what string
			n    int
		}{{"users", l.Partitions.Users}, {"channels", l.Partitions.Channels}, {"memberships", l.Partitions.Memberships}} {
			if p.n < 0 || p.n > MaxPartitions {
				return nil, badResponse("team %s: %d partitions of %s, want 0 to %d", team, p.n, p.what, MaxPartitions)
			}
		}
	}
	return &ti, nil
}

// DecodeUsersPage decodes one page of users of team; limit is the page size that was asked
// (0: unchecked).
func DecodeUsersPage(team string, data []byte, limit int) (*UsersPage, error) {
	var p UsersPage
	if err := decodeJSON(data, &p); err != nil {
		return nil, err
	}
	if err := checkPage(len(p.Users), limit, p.NextCursor); err != nil {
		return nil, err
	}
	for i := range p.Users {
		if err := checkUser(team, &p.Users[i]); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// DecodeChannelsPage decodes one page of channels of team.
func DecodeChannelsPage(team string, data []byte, limit int) (*ChannelsPage, error) {
	var p ChannelsPage
	if err := decodeJSON(data, &p); err != nil {
		return nil, err
	}
	if err := checkPage(len(p.Channels), limit, p.NextCursor); err != nil {
		return nil, err
	}
	for i := range p.Channels {
		if err := checkChannel(team, &p.Channels[i]); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// DecodeMembershipsPage decodes one page of memberships of team.
func DecodeMembershipsPage(team string, data []byte, limit int) (*MembershipsPage, error) {
	p, ok := decodeMembershipsFast(data)
	if !ok {
		p = MembershipsPage{}
		if err := decodeJSON(data, &p); err != nil {
			return nil, err
		}
	}
	if err := checkPage(len(p.Memberships), limit, p.NextCursor); err != nil {
		return nil, err
	}
	for i := range p.Memberships {
		m := &p.Memberships[i]
		if err := checkID("channel", m.Channel); err != nil {
			return nil, err
		}
		if err := checkID("user", m.User); err != nil {
			return nil, err
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
	}
	return &p, nil
}

// DecodeUser decodes GET …/users/{id}: the user must be id, of team.
func DecodeUser(team, id string, data []byte) (*User, error) {
	var u User
	if err := decodeJSON(data, &u); err != nil {
		return nil, err
	}
	if err := checkUser(team, &u); err != nil {
		return nil, err
	}
	if u.ID != id {
		return nil, badResponse("asked for user %s, got %s", id, truncate(u.ID))
	}
	return &u, nil
}

// DecodeChannel decodes GET …/channels/{id}.
func DecodeChannel(team, id string, data []byte) (*Channel, error) {
	var c Channel
	if err := decodeJSON(data, &c); err != nil {
		return nil, err
	}
	if err := checkChannel(team, &c); err != nil {
		return nil, err
	}
	if c.ID != id {
		return nil, badResponse("asked for channel %s, got %s", id, truncate(c.ID))
	}
	return &c, nil
}

func checkUser(team string, u *User) error {
	if err := checkID("user", u.ID); err != nil {
		return err
	}
	if err := u.Validate(team); err != nil {
		return fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return nil
}

func checkChannel(team string, c *Channel) error {
	if err := checkID("channel", c.ID); err != nil {
		return err
	}
	if err := c.Validate(team); err != nil {
		return fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return nil
}
