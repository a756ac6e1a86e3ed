// Command weft-proxy is a weft proxy and nothing else: `weft proxy` with the same flags,
// environment twins and help, in a binary for proxy hosts and slim containers. It leaves out
// what only an edge, the origin or `weft dev` need (the cache, full-text search, the embedded
// NATS server with JetStream); deps_test.go keeps them out.
package main

import (
	"context"
	"io"

	"github.com/weft-edge/weft/internal/cli"
	"github.com/weft-edge/weft/internal/proxycmd"
)

// weftProxy is this binary's command line: its flags' environment twins, help and exit status.
var weftProxy = cli.Program{Name: "weft-proxy"}

func main() { weftProxy.Main(run) }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	return proxycmd.Run(ctx, weftProxy, "", args, stdout)
}
