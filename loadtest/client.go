package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/weft-edge/weft/client"
	"github.com/weft-edge/weft/origin/reference"
)

// Protocol is the WebSocket subprotocol of docs/protocol.md.
const Protocol = client.Protocol

// Hello is the first frame of every connection (docs/protocol.md section 3).
type Hello = client.Hello

// Dial opens one session on wsURL with token and reads its hello. ctx bounds the handshake
// and the hello only; hc nil means http.DefaultClient.
func Dial(ctx context.Context, hc *http.Client, wsURL, token string) (*websocket.Conn, Hello, error) {
	var hello struct {
		Type string `json:"type"`
		Hello
	}
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient:   hc,
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + token}},
		Subprotocols: []string{Protocol},
	})
	if err != nil {
		if resp != nil {
			return nil, Hello{}, fmt.Errorf("loadtest: dial: HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, Hello{}, fmt.Errorf("loadtest: dial: %w", err)
	}
	c.SetReadLimit(1 << 20)
	if c.Subprotocol() != Protocol {
		c.CloseNow()
		return nil, Hello{}, fmt.Errorf("loadtest: the edge chose subprotocol %q", c.Subprotocol())
	}
	_, frame, err := c.Read(ctx)
	if err == nil {
		err = json.Unmarshal(frame, &hello)
	}
	if err == nil && hello.Type != "hello" {
		err = fmt.Errorf("first frame %.200s is not a hello", frame)
	}
	if err != nil {
		c.CloseNow()
		return nil, Hello{}, fmt.Errorf("loadtest: reading hello: %w", err)
	}
	return c, hello.Hello, nil
}

// DialMany opens n sessions, the i-th with tokens[i % len(tokens)], at most parallel
// handshakes at a time (so the edge's accept backlog never overflows). On error it closes what
// it opened and returns the first error.
func DialMany(ctx context.Context, hc *http.Client, wsURL string, tokens []string, n, parallel int) ([]*websocket.Conn, []Hello, error) {
	if len(tokens) == 0 {
		return nil, nil, errors.New("loadtest: DialMany needs tokens")
	}
	conns := make([]*websocket.Conn, n)
	hellos := make([]Hello, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for i := range n {
		g.Go(func() error {
			dctx, cancel := context.WithTimeout(gctx, 30*time.Second)
			defer cancel()
			c, h, err := Dial(dctx, hc, wsURL, tokens[i%len(tokens)])
			if err != nil {
				return fmt.Errorf("session %d: %w", i, err)
			}
			conns[i], hellos[i] = c, h
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		CloseAll(conns)
		return nil, nil, err
	}
	return conns, hellos, nil
}

// CloseAll closes every connection at once, without a close handshake.
func CloseAll(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

// TeamUser is the part of a user (docs/protocol.md section 4) the scenarios need.
type TeamUser struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// TeamUsers lists the users of team from the origin contract's listing (docs/origin.md),
// page by page.
func TeamUsers(ctx context.Context, hc *http.Client, originURL, originToken, team string) ([]TeamUser, error) {
	return originPages[TeamUser](ctx, hc, originURL, originToken, team, "users")
}

// TeamChannel is the part of a channel (docs/protocol.md section 4) the scenarios need.
type TeamChannel struct {
	ID         string `json:"id"`
	IsPrivate  bool   `json:"is_private"`
	IsArchived bool   `json:"is_archived"`
}

// TeamMembership is one channel membership of the origin contract.
type TeamMembership struct {
	Channel string `json:"channel"`
	User    string `json:"user"`
}

// TeamChannels lists the channels of team from the origin contract's listing.
func TeamChannels(ctx context.Context, hc *http.Client, originURL, originToken, team string) ([]TeamChannel, error) {
	return originPages[TeamChannel](ctx, hc, originURL, originToken, team, "channels")
}

// TeamMemberships lists the memberships of team from the origin contract's listing.
func TeamMemberships(ctx context.Context, hc *http.Client, originURL, originToken, team string) ([]TeamMembership, error) {
	return originPages[TeamMembership](ctx, hc, originURL, originToken, team, "memberships")
}

// originPages reads every page of one of the origin contract's team listings.
func originPages[T any](ctx context.Context, hc *http.Client, originURL, originToken, team, kind string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		u := originURL + "/origin/v1/teams/" + url.PathEscape(team) + "/" + kind + "?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page map[string]json.RawMessage
		if err := originJSON(ctx, hc, http.MethodGet, u, originToken, nil, &page); err != nil {
			return nil, err
		}
		var items []T
		if err := json.Unmarshal(page[kind], &items); err != nil {
			return nil, fmt.Errorf("loadtest: %s page: %w", kind, err)
		}
		all = append(all, items...)
		if err := json.Unmarshal(page["next_cursor"], &cursor); err != nil || cursor == "" {
			return all, err
		}
	}
}

// TeamSeq returns the last event seq the origin has published for team.
func TeamSeq(ctx context.Context, hc *http.Client, originURL, originToken, team string) (int64, error) {
	var info struct {
		Seq int64 `json:"seq"`
	}
	err := originJSON(ctx, hc, http.MethodGet, originURL+"/origin/v1/teams/"+url.PathEscape(team), originToken, nil, &info)
	return info.Seq, err
}

// PostEvents makes the reference origin publish req's events for team and returns when all
// are published.
func PostEvents(ctx context.Context, hc *http.Client, originURL, originToken, team string, req reference.EventsRequest) (reference.EventsReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return reference.EventsReply{}, err
	}
	var reply reference.EventsReply
	err = originJSON(ctx, hc, http.MethodPost, originURL+"/origin/admin/teams/"+url.PathEscape(team)+"/events",
		originToken, body, &reply)
	return reply, err
}

// originJSON does one request to the origin and decodes a 200 answer into v; any other status
// is an error quoting the body.
func originJSON(ctx context.Context, hc *http.Client, method, u, token string, body []byte, v any) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("loadtest: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("loadtest: %s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadtest: %s %s: HTTP %d: %.300s", method, u, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("loadtest: %s %s: %w", method, u, err)
	}
	return nil
}
