package client

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUnreachable: which refused handshakes move a client to its next URL. Only an answer
// that is not weft's (a gateway's own 502, 503 or 504) or no answer at all; whatever weft
// itself says is retried at the same URL.
func TestUnreachable(t *testing.T) {
	weft := `{"ok":false,"error":{"code":"overloaded","message":"draining","retry_after_ms":1500}}`
	for _, tc := range []struct {
		status int
		body   string
		want   bool
	}{
		{0, "", true}, // no response: refused, reset, DNS, timeout
		{502, "Bad Gateway", true},
		{503, "<html>Service Unavailable</html>", true},
		{504, "", true},
		{503, weft, false},
		{502, `{"ok":false,"error":{"code":"overloaded","message":"edge failed mid-call"}}`, false},
		{504, `{"ok":false,"error":{"code":"overloaded","message":"edge did not answer"}}`, false},
		{429, `{"ok":false,"error":{"code":"rate_limited","retry_after_ms":40}}`, false},
		{500, "oops", false},
		{404, "not found", false},
		{401, `{"ok":false,"error":{"code":"invalid_auth"}}`, false},
	} {
		var resp *http.Response
		if tc.status != 0 {
			resp = &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
		}
		err := handshakeError(errors.New("failed"), resp)
		var de *dialError
		if !errors.As(err, &de) {
			t.Fatalf("%d %q: %T, want *dialError", tc.status, tc.body, err)
		}
		if de.unreachable != tc.want {
			t.Errorf("%d %q: unreachable %v, want %v", tc.status, tc.body, de.unreachable, tc.want)
		}
	}
}

// TestReturnDelay: the n-th return attempt waits in [w/2, w), w doubling from Min up to Max,
// and the waits of one window are spread over its jittered half, not bunched.
func TestReturnDelay(t *testing.T) {
	r := Return{Min: time.Second, Max: 8 * time.Second}.withDefaults()
	rng := rand.New(rand.NewPCG(1, 2))
	for n, w := range []time.Duration{1, 2, 4, 8, 8, 8} {
		w *= time.Second
		lo, hi := w, time.Duration(0)
		for range 1000 {
			d := r.delay(n, rng)
			if d < w/2 || d >= w {
				t.Fatalf("attempt %d waits %v, want [%v, %v)", n, d, w/2, w)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// Uniform over [w/2, w): 1,000 draws cover nearly all of it.
		if hi-lo < w*2/5 {
			t.Errorf("attempt %d: waits span %v..%v of [%v, %v): not spread", n, lo, hi, w/2, w)
		}
	}
	if d := (Return{}).withDefaults(); d.Min != 10*time.Second || d.Max != 2*time.Minute {
		t.Errorf("defaults %+v", d)
	}
	if d := (Return{Min: time.Minute, Max: time.Second}).withDefaults(); d.Max != time.Minute {
		t.Errorf("Max under Min: %+v, want Max raised to Min", d)
	}
}

// TestParseURLs: one URL behaves as before (its errors unchanged, /ws added); a list is
// normalised entry by entry.
func TestParseURLs(t *testing.T) {
	us, err := parseURLs("http://127.0.0.1:1", nil)
	if err != nil || len(us) != 1 || us[0].String() != "ws://127.0.0.1:1/ws" {
		t.Fatalf("one URL: %v %v", us, err)
	}
	if _, err := parseURLs("ftp://x/ws", nil); err == nil || err.Error() != `weft: URL "ftp://x/ws": scheme must be ws, wss, http or https` {
		t.Errorf("one bad URL: %v", err)
	}
	us, err = parseURLs("", []string{"https://home.example.com", "wss://eu.example.com/weft/ws?x=1"})
	if err != nil || len(us) != 2 || us[0].String() != "wss://home.example.com/ws" || us[1].String() != "wss://eu.example.com/weft/ws?x=1" {
		t.Fatalf("two URLs: %v %v", us, err)
	}
}
