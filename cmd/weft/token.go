package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/weft-edge/weft/internal/token"
)

func runToken(_ context.Context, args []string, stdout io.Writer) error {
	fs := weft.NewFlagSet("token", "Print a client token (docs/protocol.md section 1): a JWT naming a user in a team, signed\n"+
		"with the secret the edge verifies with. Without --token-secret it uses the dev secret, good only for weft dev.")
	team := fs.String("team", "", "team ID the token grants (required)")
	user := fs.String("user", "", "user ID the token names (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token stays valid")
	secret := fs.String("token-secret", "", "shared HS256 secret, at least 16 bytes (default: the dev secret, when no --token-secret-file either)")
	secretFile := fs.String("token-secret-file", "", "file of token secrets (docs/security.md): the first line's signs, and its key ID goes in the token")
	if err := weft.Parse(fs, args, stdout); err != nil {
		return err
	}
	if *team == "" {
		return errors.New("token: --team is required")
	}
	if *user == "" {
		return errors.New("token: --user is required")
	}
	if *secret == "" && *secretFile == "" {
		*secret = token.DevSecret
	}
	keys, err := token.Load(*secret, *secretFile)
	if err != nil {
		return err
	}
	tok, err := keys.Issue(*team, *user, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
