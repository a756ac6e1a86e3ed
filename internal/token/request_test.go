package token

import (
	"net/http/httptest"
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

func TestFromRequest(t *testing.T) {
	for _, tc := range []struct {
		name, target, auth string
		want               string
		found              bool
	}{
		{"bearer header", "/ws", "Bearer abc.def.ghi", "abc.def.ghi", true},
		{"scheme is case-insensitive", "/ws", "bearer abc", "abc", true},
		{"extra spaces", "/ws", "Bearer   abc  ", "abc", true},
		{"query parameter", "/ws?token=abc.def.ghi", "", "abc.def.ghi", true},
		{"query parameter unescaped", "/ws?x=1&token=a%2Bb", "", "a+b", true},
		{"first query value", "/ws?token=one&token=two", "", "one", true},
		{"header wins over query", "/ws?token=fromquery", "Bearer fromheader", "fromheader", true},
		{"other scheme falls back to query", "/ws?token=fromquery", "Basic dTpw", "fromquery", true},
		{"empty bearer falls back to query", "/ws?token=fromquery", "Bearer ", "fromquery", true},
		{"other scheme alone", "/ws", "Basic dTpw", "", false},
		{"scheme without space", "/ws", "Bearerabc", "", false},
		{"bare token header", "/ws", "abc.def.ghi", "", false},
		{"empty query value", "/ws?token=", "", "", false},
		{"other parameter", "/ws?tok=abc", "", "", false},
		{"nothing", "/ws", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			got, found := FromRequest(r)
			testkit.Equal(t, found, tc.found, "found")
			testkit.Equal(t, got, tc.want, "token")
		})
	}
}
