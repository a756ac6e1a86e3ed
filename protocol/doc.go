// Package protocol is weft's wire vocabulary, the one definition the edge (server), the proxy
// and the Go client share: the WebSocket subprotocol name, frame types, the hello and goodbye
// frames, error codes and the error object, goodbye reasons, close codes, event type names, the
// request and reply envelopes, and the HTTP headers a proxy and an edge exchange.
// docs/protocol.md is the contract these name; section numbers below refer to it.
//
// It depends on the standard library only, so that anything that speaks weft.v1 (a proxy, a
// client, a test tool) can import it without linking the edge's cache, search index or NATS.
//
// The objects (users, channels, teams, memberships) are here too, with the checks weft applies
// to them when an origin serves them, because the edge sends them as the origin gave them and
// both package origin and package client name them (through aliases). The events' bodies are
// not: the origin contract (package origin) defines them.
package protocol
