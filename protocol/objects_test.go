package protocol

import (
	"errors"
	"testing"
)

// The objects' checks refuse with ErrBadObject and a message naming the object and the rule;
// the messages are those package origin has always logged.
func TestObjectValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // "" when valid
	}{
		{"user ok", (&User{ID: "U1", Team: "T1", Updated: 1}).Validate("T1"), ""},
		{"user no id", (&User{Team: "T1", Updated: 1}).Validate("T1"), "origin: bad object: user without id"},
		{"user other team", (&User{ID: "U1", Team: "T2", Updated: 1}).Validate("T1"), `origin: bad object: user U1 of team "T2" in team "T1"`},
		{"user no version", (&User{ID: "U1", Team: "T1"}).Validate("T1"), "origin: bad object: user U1: updated must be positive, got 0"},
		{"channel ok", (&Channel{ID: "C1", Team: "T1", Updated: 2}).Validate("T1"), ""},
		{"channel negative count", (&Channel{ID: "C1", Team: "T1", Updated: 2, MemberCount: -1}).Validate("T1"), "origin: bad object: channel C1: negative member_count"},
		{"team ok", (&Team{ID: "T1", Updated: 3}).Validate("T1"), ""},
		{"team asked for another", (&Team{ID: "T2", Updated: 3}).Validate("T1"), `origin: bad object: team "T2" where "T1" was asked`},
		{"team negative counts", (&Team{ID: "T1", Updated: 3, UserCount: -1}).Validate("T1"), "origin: bad object: team T1: negative counts"},
		{"membership ok", (&Membership{Channel: "C1", User: "U1", Updated: 4}).Validate(), ""},
		{"membership no user", (&Membership{Channel: "C1", Updated: 4}).Validate(), "origin: bad object: membership without channel or user"},
		{"membership no version", (&Membership{Channel: "C1", User: "U1"}).Validate(), "origin: bad object: membership C1/U1: updated must be positive, got 0"},
	} {
		switch {
		case tc.want == "" && tc.err != nil:
			t.Errorf("%s: %v, want valid", tc.name, tc.err)
		case tc.want != "" && (tc.err == nil || tc.err.Error() != tc.want || !errors.Is(tc.err, ErrBadObject)):
			t.Errorf("%s: %v, want %q wrapping ErrBadObject", tc.name, tc.err, tc.want)
		}
	}
}
