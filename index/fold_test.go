package index

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"José Núñez":       "jose nunez",
		"Zoë Dvořák":       "zoe dvorak",
		"Søren Østergaard": "soren ostergaard",
		"Łukasz Wójcik":    "lukasz wojcik",
		"Jürgen Müller":    "jurgen muller",
		"Nguyễn Văn An":    "nguyen van an",
		"Straße":           "strasse",
		"plain ascii":      "plain ascii",
		"UPPER":            "upper",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWordsSplitsOnSeparators(t *testing.T) {
	got := Words("  José.Núñez_the-Great  jr ")
	want := []string{"jose", "nunez", "the", "great", "jr"}
	if !slices.Equal(got, want) {
		t.Fatalf("Words = %q, want %q", got, want)
	}
}

func FuzzFold(f *testing.F) {
	f.Add("José Núñez")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		folded := Fold(s)
		if Fold(folded) != folded {
			t.Fatalf("Fold is not idempotent on %q: %q then %q", s, folded, Fold(folded))
		}
	})
}

// Fold's table must agree with the definition, rune by rune and on whole strings.
func TestFoldMatchesDefinition(t *testing.T) {
	for r := rune(0); r < 0x2400; r++ {
		s := string(r)
		if got, want := Fold(s), foldSlow(s); got != want {
			t.Fatalf("Fold(%U %q) = %q, definition says %q", r, s, got, want)
		}
	}
	for _, s := range []string{"José Núñez", "NGUYỄN Văn An", "e\u0301cole", "Ærøskøbing", "İstanbul", "ΣΊΣΥΦΟΣ"} {
		if got, want := Fold(s), foldSlow(s); got != want {
			t.Errorf("Fold(%q) = %q, definition says %q", s, got, want)
		}
	}
}

func FuzzWords(f *testing.F) {
	f.Add("José.Núñez_the-Great  jr")
	f.Add("e\u0301\u0301 \xff-x")
	f.Fuzz(func(t *testing.T, s string) {
		for _, w := range Words(s) {
			if w == "" || strings.IndexFunc(w, isSep) >= 0 {
				t.Fatalf("Words(%q) has word %q", s, w)
			}
			if ws := Words(w); len(ws) != 1 || ws[0] != w {
				t.Fatalf("word %q of %q does not fold to itself: %q", w, s, ws)
			}
		}
		if got, want := Fold(s), foldSlow(s); utf8.ValidString(s) && got != want {
			t.Fatalf("Fold(%q) = %q, definition says %q", s, got, want)
		}
	})
}
