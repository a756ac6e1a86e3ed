package client

// Waiting returns how many requests of c wait for a connection: a test starts a request and
// waits for it to be waiting before it changes what the next connection meets.
func Waiting(c *Client) int64 { return c.queue.waiters.Load() }
