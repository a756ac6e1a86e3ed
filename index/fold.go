package index

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Matching is case- and accent-insensitive ("jose nun" finds "José Núñez"). Fold maps a string
// to the form both names and queries are compared in: lower case, marks removed, and the
// letters that have no decomposition (ø, ł, ß, æ, đ, …) spelled the way a person types them
// on a plain keyboard.

var special = map[rune]string{
	'ø': "o", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ß': "ss", 'æ': "ae", 'œ': "oe",
	'ı': "i", 'ħ': "h", 'ŧ': "t", 'ŋ': "n", 'ĸ': "k", 'ſ': "s",
}

// Fold returns s lower-cased with accents removed.
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			ascii = false
			break
		}
	}
	if ascii {
		return s // the common case costs no allocation
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue // a combining mark: the accent of the letter before it
		}
		r = unicode.ToLower(r)
		if rep, ok := special[r]; ok {
			b.WriteString(rep)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isSep reports the characters names and queries split on: spaces, '-', '_' and '.'.
func isSep(r rune) bool { return r == '-' || r == '_' || r == '.' || unicode.IsSpace(r) }

// Words folds s and splits it into its words, dropping empty ones.
func Words(s string) []string {
	return strings.FieldsFunc(Fold(s), isSep)
}
