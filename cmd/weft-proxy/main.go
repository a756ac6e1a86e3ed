// Command weft-proxy is a weft proxy and nothing else: `weft proxy` with the same flags,
// environment twins and help, in a binary for proxy hosts and slim containers. It leaves out
// what only an edge, the origin or `weft dev` need (the cache, full-text search, the embedded
// NATS server with JetStream); deps_test.go keeps them out.
package main

import (
	"context"
	"io"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/opscmd"
	"github.com/weft-edge/weft/internal/proxycmd"
)

// weftProxy is this binary's command line: its flags' environment twins, help and exit status.
var weftProxy = cli.Program{Name: "weft-proxy"}

func main() { weftProxy.Main(run) }

// run runs the proxy, or one of the operator's commands named first: version, and health for
// a container's health check.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			return opscmd.RunVersion(ctx, weftProxy, args[1:], stdout)
		case "health":
			return opscmd.RunHealth(ctx, weftProxy, args[1:], stdout)
		}
	}
	return proxycmd.Run(ctx, weftProxy, "", args, stdout)
}
