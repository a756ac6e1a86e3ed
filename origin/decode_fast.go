package origin

import "strconv"

// Memberships are ~90% of a big team's snapshot (5M rows for giant) and encoding/json spends
// about a microsecond per row in reflection. decodeMembershipsFast parses the plain shape of a
// memberships page directly. It declines (ok=false) anything unusual — escapes, non-ASCII,
// unknown keys, non-integer numbers — and the caller then uses encoding/json, so the fast path
// never accepts something the slow path would refuse or read differently
// (FuzzMembershipsFastMatchesJSON checks exactly that).
func decodeMembershipsFast(data []byte) (p MembershipsPage, ok bool) {
	s := scanner{b: data}
	if !s.byte('{') {
		return p, false
	}
	if s.byte('}') {
		return p, s.end()
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return p, false
		}
		switch key {
		case "memberships":
			if s.null() {
				p.Memberships = nil
			} else if p.Memberships, ok = s.rows(p.Memberships[:0]); !ok {
				return p, false
			}
		case "next_cursor":
			if p.NextCursor, ok = s.str(); !ok {
				return p, false
			}
		default:
			return p, false
		}
		if s.byte('}') {
			return p, s.end()
		}
		if !s.byte(',') {
			return p, false
		}
	}
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c (after white space) if it is next.
func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

func (s *scanner) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *scanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
		s.i++
	}
	return "", false
}

// int reads an integer without fraction or exponent that fits int64.
func (s *scanner) int() (int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) {
		return 0, false // no digits, or a leading zero JSON forbids
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return v, err == nil
}

func (s *scanner) rows(out []Membership) ([]Membership, bool) {
	if !s.byte('[') {
		return nil, false
	}
	if out == nil {
		out = make([]Membership, 0, 64)
	}
	if s.byte(']') {
		return out, true
	}
	for {
		var m Membership
		if !s.byte('{') {
			return nil, false
		}
		if !s.byte('}') {
			for {
				key, ok := s.str()
				if !ok || !s.byte(':') {
					return nil, false
				}
				switch key {
				case "channel":
					m.Channel, ok = s.str()
				case "user":
					m.User, ok = s.str()
				case "updated":
					m.Updated, ok = s.int()
				default:
					ok = false
				}
				if !ok {
					return nil, false
				}
				if s.byte('}') {
					break
				}
				if !s.byte(',') {
					return nil, false
				}
			}
		}
		out = append(out, m)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}
