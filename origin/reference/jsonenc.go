package reference

import (
	"strconv"
	"unicode/utf8"

	"github.com/weft-edge/weft/origin"
)

// Pages are written by appending JSON by hand: a giant snapshot is 366,000 users and ~5 million
// membership rows, and reflection-based encoding/json spends several times longer on them than
// on the network. The output decodes to exactly what encoding/json would produce (tests check
// it); field order follows the struct tags.

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func appendUser(b []byte, u *origin.User) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, u.ID)
	b = append(b, `,"team":`...)
	b = appendString(b, u.Team)
	b = append(b, `,"name":`...)
	b = appendString(b, u.Name)
	b = append(b, `,"real_name":`...)
	b = appendString(b, u.RealName)
	b = append(b, `,"display_name":`...)
	b = appendString(b, u.DisplayName)
	b = append(b, `,"title":`...)
	b = appendString(b, u.Title)
	b = append(b, `,"avatar_url":`...)
	b = appendString(b, u.AvatarURL)
	b = append(b, `,"tz":`...)
	b = appendString(b, u.TZ)
	b = append(b, `,"is_bot":`...)
	b = appendBool(b, u.IsBot)
	b = append(b, `,"deleted":`...)
	b = appendBool(b, u.Deleted)
	b = append(b, `,"updated":`...)
	b = strconv.AppendInt(b, u.Updated, 10)
	return append(b, '}')
}

func appendChannel(b []byte, c *origin.Channel) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"team":`...)
	b = appendString(b, c.Team)
	b = append(b, `,"name":`...)
	b = appendString(b, c.Name)
	b = append(b, `,"topic":`...)
	b = appendString(b, c.Topic)
	b = append(b, `,"purpose":`...)
	b = appendString(b, c.Purpose)
	b = append(b, `,"is_private":`...)
	b = appendBool(b, c.IsPrivate)
	b = append(b, `,"is_archived":`...)
	b = appendBool(b, c.IsArchived)
	b = append(b, `,"created":`...)
	b = appendString(b, c.Created)
	b = append(b, `,"creator":`...)
	b = appendString(b, c.Creator)
	b = append(b, `,"member_count":`...)
	b = strconv.AppendInt(b, int64(c.MemberCount), 10)
	b = append(b, `,"updated":`...)
	b = strconv.AppendInt(b, c.Updated, 10)
	return append(b, '}')
}

func appendTeam(b []byte, t *origin.Team) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, t.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"domain":`...)
	b = appendString(b, t.Domain)
	b = append(b, `,"user_count":`...)
	b = strconv.AppendInt(b, int64(t.UserCount), 10)
	b = append(b, `,"channel_count":`...)
	b = strconv.AppendInt(b, int64(t.ChannelCount), 10)
	b = append(b, `,"updated":`...)
	b = strconv.AppendInt(b, t.Updated, 10)
	return append(b, '}')
}

// appendMembership writes one membership row; IDs are built in place, with no string at all.
func appendMembership(b []byte, team, u int, row memRow) []byte {
	b = append(b, `{"channel":"`...)
	b = appendObjectID(b, 'C', team, int(row.ch))
	b = append(b, `","user":"`...)
	b = appendObjectID(b, 'U', team, u)
	b = append(b, `","updated":`...)
	b = strconv.AppendInt(b, row.updated, 10)
	return append(b, '}')
}
