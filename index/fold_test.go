package index

import (
	"slices"
	"testing"
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
