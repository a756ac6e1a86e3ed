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
//
// Folding is the bulk of an index build (a giant team has 1.1M name fields), so it works rune
// by rune from a table computed once for the scripts names are mostly written in, and falls
// back to full normalization only for the rest. foldSlow is the definition; a test holds the
// two equal.

var special = map[rune]string{
	'ø': "o", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ß': "ss", 'æ': "ae", 'œ': "oe",
	'ı': "i", 'ħ': "h", 'ŧ': "t", 'ŋ': "n", 'ĸ': "k", 'ſ': "s",
}

// foldTable[r] is the folded form of rune r for r below its length: Latin (with Extended-A and
// B, and Vietnamese's Latin Extended Additional), Greek, Cyrillic and the rest below U+2000.
var foldTable = func() []string {
	t := make([]string, 0x2000)
	for r := range t {
		t[r] = foldSlow(string(rune(r)))
	}
	return t
}()

// Fold returns s lower-cased with accents removed.
func Fold(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			break
		}
		i++
	}
	if i == len(s) {
		return s // the common case costs no allocation
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteByte(byte(r))
		case int(r) < len(foldTable):
			b.WriteString(foldTable[r])
		default:
			b.WriteString(foldSlow(string(r)))
		}
	}
	return b.String()
}

// foldSlow is Fold's definition: decompose, drop the combining marks, lower-case, and spell
// the special letters out.
func foldSlow(s string) string {
	var b strings.Builder
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
	return appendWords(nil, s)
}

// appendWords appends the words of s to dst.
func appendWords(dst []string, s string) []string {
	f := Fold(s)
	start := -1
	for i, r := range f {
		if isSep(r) {
			if start >= 0 {
				dst = append(dst, f[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, f[start:])
	}
	return dst
}
