// Package client is the Go client of weft (docs/protocol.md): it connects to an edge node or the
// proxy over a WebSocket, keeps itself connected, and keeps a local store of the objects the
// edge sends, so that events can be rendered without asking for anything.
//
// Start with Dial and the Events channel:
//
//	c, err := client.Dial(ctx, client.Options{URL: "ws://127.0.0.1:8080/ws", Token: tok})
//	if err != nil { ... }
//	defer c.Close()
//	for ev := range c.Events() {
//		if ev.Type == client.EventMessage {
//			sender, _ := c.User(ev.UserID) // in memory: the edge attached it if we lacked it
//			fmt.Println(sender.Name, ev.Text)
//		}
//	}
//
// What the client does for you:
//
//   - Boot: after connecting it calls boot (the caller, the team, the caller's channels) and
//     keeps the result in the Store (Options.SkipBoot turns that off).
//   - The Store: every object in a reply (boot, users.info, users.list, channels.info), carried
//     by an event (user_change, channel_created, …) or attached to one as a just-in-time
//     annotation is kept at its newest version. Store.Renderable says whether an event's sender,
//     mentions and channel are all known. Because the edge attaches what this connection has not
//     recently been sent, a client that keeps what it gets does not need users.info to render.
//   - Requests: typed methods for every method of the protocol (UsersInfo, Autocomplete, …) and
//     Call for any other; replies are matched by id and bounded by the caller's context. The
//     server answers one connection's requests in order, one at a time; the client keeps at
//     most 64 in flight per connection. A refusal is an *Error with its code.
//   - Reconnects: when a connection ends the client waits (exponential backoff with full
//     jitter; exactly the reconnect_after_ms a goodbye asked for; a 503's Retry-After plus
//     jitter), reconnects with since=<last seq> and, when the edge cannot replay that far
//     (hello.resumed false), boots again. Events are handed over in order and never twice.
//     Requests made while reconnecting wait for the next connection (bounded by their context);
//     a request whose connection died fails with ErrDisconnected, and since every method only
//     reads, it can be retried.
//   - Heartbeats: a ping every heartbeat_ms; a connection whose ping goes unanswered is dropped
//     and replaced.
//   - Several URLs (Options.URLs, one per region, home first): when a dial finds nothing of
//     weft answering (refused, reset, no answer, a load balancer's own 502/503/504) the client
//     moves to the next URL and resumes there; what weft itself refuses is retried where it
//     was. Away from home it dials home now and then (Options.Return, jittered) beside its open
//     connection and moves back once that one is up. URL says where it is, OnSwitch and Stats
//     report the moves (docs/protocol.md section 5, "Several URLs").
//
// Events must be read: past Options.EventQueue unread events the client drops the connection
// and resumes once the reader has caught up, so a slow reader loses nothing but never makes
// replies wait behind events.
package client
