package origin

// CloseIdleConnections lets the external tests (package origin_test, which run the client
// against the reference origin) release the client's pooled connections, so the leak check
// finds no transport goroutine left behind.
func CloseIdleConnections(c *Client) { c.http.CloseIdleConnections() }
