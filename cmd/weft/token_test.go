package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/token"
)

// clearTokenEnv makes sure no WEFT_* twin of a `weft token` flag leaks in from the environment.
func clearTokenEnv(t *testing.T) {
	for _, name := range []string{"WEFT_TEAM", "WEFT_USER", "WEFT_TTL", "WEFT_TOKEN_SECRET"} {
		t.Setenv(name, "") // restores the old value when the test ends
		os.Unsetenv(name)
	}
}

func verifyPrinted(t *testing.T, out string, secret []byte) token.Claims {
	t.Helper()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line, got %q", out)
	}
	keys, err := token.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := keys.Verify(strings.TrimSuffix(out, "\n"))
	if err != nil {
		t.Fatalf("printed token does not verify: %v", err)
	}
	return c
}

func TestTokenCommand(t *testing.T) {
	clearTokenEnv(t)
	var buf bytes.Buffer
	if err := run(context.Background(), []string{"token", "--team", "T1", "--user", "U1"}, &buf); err != nil {
		t.Fatal(err)
	}
	c := verifyPrinted(t, buf.String(), []byte(token.DevSecret))
	if c.Team != "T1" || c.User != "U1" {
		t.Fatalf("claims %+v, want team T1 user U1", c)
	}
	if left := time.Until(c.Expires); left < 23*time.Hour || left > 24*time.Hour {
		t.Fatalf("expires in %v, want the 24h default", left)
	}
}

func TestTokenCommandSecretAndTTL(t *testing.T) {
	clearTokenEnv(t)
	const secret = "a-deployment-secret-of-some-length"
	t.Setenv("WEFT_TOKEN_SECRET", secret)
	var buf bytes.Buffer
	if err := run(context.Background(), []string{"token", "--team", "T1", "--user", "U1", "--ttl", "1m"}, &buf); err != nil {
		t.Fatal(err)
	}
	c := verifyPrinted(t, buf.String(), []byte(secret))
	if left := time.Until(c.Expires); left > time.Minute {
		t.Fatalf("expires in %v, want at most 1m", left)
	}
}

func TestTokenCommandRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"missing team", []string{"token", "--user", "U1"}},
		{"missing user", []string{"token", "--team", "T1"}},
		{"short secret", []string{"token", "--team", "T1", "--user", "U1", "--token-secret", "short"}},
		{"zero ttl", []string{"token", "--team", "T1", "--user", "U1", "--ttl", "0s"}},
		{"stray argument", []string{"token", "--team", "T1", "--user", "U1", "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearTokenEnv(t)
			var buf bytes.Buffer
			if err := run(context.Background(), tc.args, &buf); err == nil {
				t.Fatalf("no error; printed %q", buf.String())
			}
			if buf.Len() != 0 {
				t.Fatalf("printed %q on error", buf.String())
			}
		})
	}
}
