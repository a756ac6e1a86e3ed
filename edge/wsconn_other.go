//go:build !unix

package edge

// tryWrite writes nothing without a writev of its own: every write waits (writeBlocking).
func (c *wsConn) tryWrite(w *wireBatch) (done bool, err error) { return len(w.iov) == 0, nil }
