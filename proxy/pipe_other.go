//go:build !unix

package proxy

import "net"

// readReady: without the socket's descriptor the copy holds its buffer while it waits.
func readReady(c net.Conn) func() (*[]byte, int, error) { return readBlocking(c) }

// writeAll writes through the connection.
func writeAll(c net.Conn) func(p []byte) error {
	return func(p []byte) error { _, err := c.Write(p); return err }
}

func withRawIO(c net.Conn) net.Conn { return c }

// stillOpen cannot peek here: a spare that was closed fails its handshake and is retried.
func stillOpen(net.Conn) bool { return true }
