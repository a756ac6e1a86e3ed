//go:build !unix

package proxy

import "net"

// waitReadable: without a portable peek the copy holds its buffer while it waits.
func waitReadable(net.Conn) func() error { return nil }
