package routesig

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte("k"), 32)

func newSigner(tb testing.TB) *Signer {
	tb.Helper()
	s, err := New(testKey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var route = Route{Path: "/ws", Token: "tok.en.sig", Excluded: "edge-1,edge-2", Region: "eu"}

func TestSignVerify(t *testing.T) {
	s := newSigner(t)
	now := time.UnixMilli(1_800_000_000_000)
	sig := s.Sign(now, route)
	if err := s.Verify(sig, now.Add(MaxSkew), route); err != nil {
		t.Fatalf("a signature MaxSkew old: %v", err)
	}
	if err := s.Verify(sig, now.Add(-MaxSkew), route); err != nil {
		t.Fatalf("a signature MaxSkew ahead: %v", err)
	}
	// Every field is bound: the same signature says nothing of another request.
	for name, other := range map[string]Route{
		"path":     {Path: "/api/users.info", Token: route.Token, Excluded: route.Excluded, Region: route.Region},
		"token":    {Path: route.Path, Token: "another.to.ken", Excluded: route.Excluded, Region: route.Region},
		"excluded": {Path: route.Path, Token: route.Token, Excluded: "edge-1", Region: route.Region},
		"region":   {Path: route.Path, Token: route.Token, Excluded: route.Excluded, Region: "us"},
		// Fields run together differently must not collide.
		"shifted": {Path: route.Path, Token: route.Token + "edge-1", Excluded: ",edge-2", Region: route.Region},
	} {
		if err := s.Verify(sig, now, other); !errors.Is(err, ErrBad) {
			t.Errorf("another %s: %v, want ErrBad", name, err)
		}
	}
	other, _ := New(bytes.Repeat([]byte("x"), 32))
	if err := other.Verify(sig, now, route); !errors.Is(err, ErrBad) {
		t.Errorf("another key: %v, want ErrBad", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	s := newSigner(t)
	now := time.UnixMilli(1_800_000_000_000)
	good := s.Sign(now, route)
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name, sig string
		at        time.Time
		want      error
	}{
		{"none", "", now, ErrMissing},
		{"stale", good, now.Add(MaxSkew + time.Millisecond), ErrStale},
		{"from the future", good, now.Add(-MaxSkew - time.Millisecond), ErrStale},
		{"another version", "v2." + parts[1] + "." + parts[2], now, ErrMalformed},
		{"no time", "v1.." + parts[2], now, ErrMalformed},
		{"time with a sign", "v1.+" + parts[1] + "." + parts[2], now, ErrMalformed},
		{"time with a leading zero", "v1.0" + parts[1] + "." + parts[2], now, ErrMalformed},
		{"negative time", "v1.-1." + parts[2], now, ErrMalformed},
		{"short mac", "v1." + parts[1] + "." + parts[2][:42], now, ErrMalformed},
		{"mac not base64url", "v1." + parts[1] + "." + strings.Repeat("!", 43), now, ErrMalformed},
		{"extra part", good + ".x", now, ErrMalformed},
		{"mac of another time", "v1." + parts[1][:len(parts[1])-1] + "9." + parts[2], now, ErrBad},
	} {
		if err := s.Verify(tc.sig, tc.at, route); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestNewRefusesShortKey(t *testing.T) {
	if _, err := New(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte key was taken")
	}
}

// FuzzVerify: no input makes Verify panic or accept a signature Sign did not make for the route.
func FuzzVerify(f *testing.F) {
	s, err := New(testKey)
	if err != nil {
		f.Fatal(err)
	}
	now := time.UnixMilli(1_800_000_000_000)
	f.Add(s.Sign(now, route), route.Path, route.Excluded)
	f.Add("v1.1800000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/ws", "")
	f.Add("v1.99999999999999999999.x", "/ws", "edge-1")
	f.Fuzz(func(t *testing.T, sig, path, excluded string) {
		rt := Route{Path: path, Token: route.Token, Excluded: excluded, Region: route.Region}
		if s.Verify(sig, now, rt) != nil {
			return
		}
		// Accepted: it must be what Sign makes for rt at the time it names.
		parts := strings.Split(sig, ".")
		ms, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || sig != s.Sign(time.UnixMilli(ms), rt) {
			t.Fatalf("accepted %q for %+v", sig, rt)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s := newSigner(b)
	now := time.Now()
	sig := s.Sign(now, route)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Verify(sig, now, route); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyUnderEveryKey: while a secret rolls, a signature under either key verifies where
// both are held, and only there.
func TestVerifyUnderEveryKey(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
	oldS, _ := New(oldKey)
	newS, _ := New(newKey)
	both, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, sig := range map[string]string{"old": oldS.Sign(now, route), "new": newS.Sign(now, route)} {
		if err := both.Verify(sig, now, route); err != nil {
			t.Errorf("signed under the %s key, verified under both: %v", name, err)
		}
	}
	if err := newS.Verify(oldS.Sign(now, route), now, route); !errors.Is(err, ErrBad) {
		t.Errorf("signed under the old key, verified under the new alone: %v", err)
	}
	if both.Sign(now, route) != newS.Sign(now, route) {
		t.Error("a Signer of several keys signs with the first")
	}
}
