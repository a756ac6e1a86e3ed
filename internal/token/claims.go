package token

import (
	"strconv"
)

// parseClaims decodes the claims of a token as Issue writes them into c, and reports whether
// it could: a JSON object of string and number members with no whitespace, no escapes, no
// null and each of sub, team, exp and nbf at most once and spelled in lower case. Anything
// else (ok false) is left to encoding/json. Within what it takes it decodes exactly as
// json.Unmarshal into a wireClaims does (FuzzParseClaims compares the two): members it does
// not know are skipped, and a number out of float64's range is refused as json refuses it.
//
// It is here because json.Unmarshal run cold (a handshake now and then) is ~7 µs of
// verifying a token, against ~4 µs for everything else (BenchmarkVerifyCold).
func parseClaims(b []byte, c *wireClaims) (ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	var seen [4]bool // sub, team, exp, nbf
	i := 1
	if b[i] == '}' {
		return i == len(b)-1
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok || next >= len(b) || b[next] != ':' {
			return false
		}
		i = next + 1
		if i >= len(b) {
			return false
		}
		field := -1
		switch key {
		case "sub":
			field = 0
		case "team":
			field = 1
		case "exp":
			field = 2
		case "nbf":
			field = 3
		default:
			if foldsToField(key) { // json matches keys case-insensitively: its rules, not ours
				return false
			}
		}
		if field >= 0 {
			if seen[field] { // json keeps the last of duplicates; not worth matching
				return false
			}
			seen[field] = true
		}
		if b[i] == '"' {
			v, next, ok := plainString(b, i)
			if !ok || field == 2 || field == 3 { // a string for a number: json refuses it
				return false
			}
			switch field {
			case 0:
				c.Sub = v
			case 1:
				c.Team = v
			}
			i = next
		} else {
			next, ok := jsonNumber(b, i)
			if !ok || field == 0 || field == 1 {
				return false
			}
			if field >= 2 {
				f, err := strconv.ParseFloat(string(b[i:next]), 64)
				if err != nil { // out of range: json refuses it too
					return false
				}
				if field == 2 {
					c.Exp = f
				} else {
					c.Nbf = f
				}
			}
			i = next
		}
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i == len(b)-1
		default:
			return false
		}
	}
}

// plainString reads the JSON string at b[i] when it is printable ASCII without escapes, and
// returns it and the index after its closing quote.
func plainString(b []byte, i int) (s string, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

// jsonNumber returns the index after the JSON number at b[i] (RFC 8259 section 6's grammar).
func jsonNumber(b []byte, i int) (next int, ok bool) {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// foldsToField reports whether json would match key to one of wireClaims' fields although it
// is not spelled as the field's tag (encoding/json folds case, and folds 'K' (U+212A) and
// 'ſ' (U+017F) too, which plainString never lets through).
func foldsToField(key string) bool {
	for _, f := range [...]string{"sub", "team", "exp", "nbf"} {
		if len(key) == len(f) && equalFoldASCII(key, f) {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
