// Package opscmd is the small commands an operator's tooling runs against a weft process,
// written once for both binaries (weft and weft-proxy): version, health (a container's health
// check, in an image with no curl) and drain (an edge's Kubernetes preStop hook).
package opscmd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/version"
	"github.com/weft-edge/weft/protocol"
)

// Summaries are the commands' lines in a list of commands.
const (
	VersionSummary = "print this binary's version, commit and Go version"
	HealthSummary  = "exit 0 when a weft endpoint answers 200 (a container health check)"
	DrainSummary   = "drain an edge through its operator listener and wait until it is drained (a preStop hook)"
)

// RunVersion prints the binary's build (internal/version).
func RunVersion(_ context.Context, prog cli.Program, args []string, stdout io.Writer) error {
	fs := prog.NewFlagSet("version", "Print this binary's version, the commit it was built from and the Go version; the same\n"+
		"labels are on every process's weft_build_info metric.")
	if err := prog.Parse(fs, args, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", prog.Name, version.Read())
	return nil
}

// RunHealth asks a URL and succeeds when it answers 200.
func RunHealth(ctx context.Context, prog cli.Program, args []string, stdout io.Writer) error {
	fs := prog.NewFlagSet("health", "GET --url and exit 0 when it answers 200, else 2 with why: a container's health check\n"+
		"in an image that has no curl. Point it at an operator listener's /readyz (or /healthz).")
	u := fs.String("url", "http://127.0.0.1:9090/readyz", "the endpoint to ask")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := prog.Parse(fs, args, stdout); err != nil {
		return err
	}
	if err := checkURL("--url", *u); err != nil {
		return err
	}
	if *timeout <= 0 {
		return fmt.Errorf("--timeout: want more than 0, got %s", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, err := call(ctx, http.MethodGet, *u, "")
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, body)
	return nil
}

// RunDrain asks an edge to drain (POST /drain on its operator listener) and waits until it
// says it is drained.
func RunDrain(ctx context.Context, prog cli.Program, args []string, stdout io.Writer) error {
	fs := prog.NewFlagSet("drain", "Drain an edge: POST /drain on its operator listener (--ops-addr), which moves its sessions\n"+
		"to their teams' next owners, pre-warmed, and answers once they are gone. The edge keeps\n"+
		"running, not ready, until it is stopped. A Kubernetes preStop hook runs this.")
	ops := fs.String("ops-url", "http://127.0.0.1:9090", "the edge's operator listener")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the drain (the pod's terminationGracePeriodSeconds bounds it too)")
	if err := prog.Parse(fs, args, stdout); err != nil {
		return err
	}
	if err := checkURL("--ops-url", *ops); err != nil {
		return err
	}
	if *timeout <= 0 {
		return fmt.Errorf("--timeout: want more than 0, got %s", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, err := call(ctx, http.MethodPost, strings.TrimSuffix(*ops, "/")+"/drain", protocol.HeaderDrain)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, body)
	return nil
}

func checkURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s)://host:port URL", flag, s)
	}
	return nil
}

// call makes one request and returns the body of a 200; anything else is an error that
// says what was answered.
func call(ctx context.Context, method, u, header string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return "", err
	}
	if header != "" {
		req.Header.Set(header, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
