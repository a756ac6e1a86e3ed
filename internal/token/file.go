package token

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadSecrets reads a key set from the file at path (--token-secret-file), so that no secret
// has to be on a command line (where ps, /proc and a profiler's cmdline show it). Each line is
// a secret: "<key ID> <secret>", or "<secret>" alone for the secret of tokens that name no key
// ID. The first line's secret signs (weft token, weft dev); every line's verifies. Blank lines
// and lines starting with # are skipped.
func ReadSecrets(path string) ([]Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	var out []Secret
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch len(f) {
		case 1:
			out = append(out, Secret{Key: []byte(f[0])})
		case 2:
			out = append(out, Secret{ID: f[0], Key: []byte(f[1])})
		default:
			// The line is not quoted back: it holds a secret.
			return nil, fmt.Errorf("token: %s line %d: want \"<key ID> <secret>\" or \"<secret>\", got %d fields", path, n, len(f))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token: %s holds no secret", path)
	}
	return out, nil
}

// Load returns the Keys of a command's flags: the secret itself (--token-secret) or a file of
// them (--token-secret-file), not both. Neither: errNoSecret.
func Load(secret, file string) (*Keys, error) {
	switch {
	case secret != "" && file != "":
		return nil, errors.New("token: give --token-secret or --token-secret-file, not both")
	case file != "":
		ss, err := ReadSecrets(file)
		if err != nil {
			return nil, err
		}
		return NewSet(ss)
	case secret != "":
		return New([]byte(secret))
	}
	return nil, ErrNoSecret
}

// ErrNoSecret: Load was given neither a secret nor a file.
var ErrNoSecret = errors.New("token: no secret: pass --token-secret-file (or --token-secret, or WEFT_TOKEN_SECRET_FILE / WEFT_TOKEN_SECRET)")
