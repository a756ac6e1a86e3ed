package reference

// IDs are Slack-like: a type letter and 8 upper-case base-36 digits. A user or channel ID spells
// its team index (3 digits) then its object index (5 digits), so any ID decodes back to where
// it lives in O(1) with no map, IDs are unique across the teams of a world, and byte order is
// index order (digits sort before letters in ASCII), which is the order pages walk.
//
//	T00000001  team 1
//	U001000A7  user 367 of team 1
//	C00100002  channel 2 of team 1

const digits36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

const idLen = 9

func appendBase36(b []byte, v, width int) []byte {
	var tmp [8]byte
	for i := width - 1; i >= 0; i-- {
		tmp[i] = digits36[v%36]
		v /= 36
	}
	return append(b, tmp[:width]...)
}

func appendObjectID(b []byte, kind byte, team, idx int) []byte {
	b = append(b, kind)
	b = appendBase36(b, team, 3)
	return appendBase36(b, idx, 5)
}

func teamID(team int) string { return string(appendBase36([]byte{'T'}, team, 8)) }

func userID(team, idx int) string {
	return string(appendObjectID(make([]byte, 0, idLen), 'U', team, idx))
}

func channelID(team, idx int) string {
	return string(appendObjectID(make([]byte, 0, idLen), 'C', team, idx))
}

// parseBase36 reads upper-case base-36 digits only: "u001" is not an ID.
func parseBase36(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v*36 + int(c-'0')
		case c >= 'A' && c <= 'Z':
			v = v*36 + int(c-'A') + 10
		default:
			return 0, false
		}
	}
	return v, true
}

// parseTeamID returns the team index of id. Range checks against a world are the caller's.
func parseTeamID(id string) (int, bool) {
	if len(id) != idLen || id[0] != 'T' {
		return 0, false
	}
	return parseBase36(id[1:])
}

// parseObjectID returns the team and object index of a user (kind 'U') or channel ('C') ID.
func parseObjectID(kind byte, id string) (team, idx int, ok bool) {
	if len(id) != idLen || id[0] != kind {
		return 0, 0, false
	}
	if team, ok = parseBase36(id[1:4]); !ok {
		return 0, 0, false
	}
	idx, ok = parseBase36(id[4:])
	return team, idx, ok
}

// UserID is the ID of user idx of team index team, the world's own spelling: code that walks a
// world's users (the origin on PostgreSQL's seeding) names them with it.
func UserID(team, idx int) string { return userID(team, idx) }

// ChannelID is the ID of channel idx of team index team.
func ChannelID(team, idx int) string { return channelID(team, idx) }

// ObjectIndex reads a user (kind 'U') or channel ('C') ID: its team index and object index.
func ObjectIndex(kind byte, id string) (team, idx int, ok bool) { return parseObjectID(kind, id) }
