package origin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Guard runs every origin call. The overload layer's circuit breaker implements it: Do either
// runs fn and returns its error (counting it with IsFailure), or refuses at once with an error
// wrapping ErrUnavailable. A nil Guard runs every call.
type Guard interface {
	Do(ctx context.Context, fn func(context.Context) error) error
}

// ClientConfig configures a Client. The zero value of every field but BaseURL means the default.
type ClientConfig struct {
	// BaseURL of the origin, e.g. "http://127.0.0.1:8081". Required.
	BaseURL string
	// Token is the origin service token sent as a bearer token; "" sends none.
	Token string
	// HTTPClient to use; nil means a client with a pooled transport sized for paging.
	HTTPClient *http.Client
	// TLS is that pooled transport's TLS to an https origin (the CA that signs its certificate,
	// a client certificate it asks for); nil: Go's defaults. Unused with HTTPClient.
	TLS *tls.Config
	// Timeout of one call (one page), default 10s.
	Timeout time.Duration
	// PageLimit is the page size asked of listings, default 5000. Larger pages load a big team
	// faster; the origin may clamp it.
	PageLimit int
	// MaxBodyBytes caps one response body, default 64 MiB; a larger one is ErrBadResponse.
	MaxBodyBytes int64
	// MaxRows caps the rows of one listing walk, default 50M, so a listing that never ends is
	// refused instead of filling memory.
	MaxRows int
	// Guard wraps every call (the circuit breaker); nil means none.
	Guard Guard
}

// Client is weft's HTTP client of the origin contract (docs/origin.md). It is safe for
// concurrent use.
type Client struct {
	base   *url.URL
	cfg    ClientConfig
	http   *http.Client
	header string
}

// NewClient validates cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("origin: client needs a BaseURL")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("origin: bad BaseURL %q: want http(s)://host[:port]", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.PageLimit <= 0 {
		cfg.PageLimit = 5000
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 50_000_000
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		if cfg.TLS != nil {
			tr.TLSClientConfig = cfg.TLS
		}
		hc = &http.Client{Transport: tr}
	}
	c := &Client{base: base, cfg: cfg, http: hc}
	if cfg.Token != "" {
		c.header = "Bearer " + cfg.Token
	}
	return c, nil
}

// PageLimit is the page size the client asks for.
func (c *Client) PageLimit() int { return c.cfg.PageLimit }

// Team fetches the team and the last event seq the origin has published for it.
func (c *Client) Team(ctx context.Context, team string) (*TeamInfo, error) {
	var out *TeamInfo
	err := c.call(ctx, "team", team, teamPath(team), nil, func(b []byte) (err error) {
		out, err = DecodeTeamInfo(team, b)
		return err
	})
	return out, err
}

// UsersPage fetches one page of team's users.
func (c *Client) UsersPage(ctx context.Context, team, cursor string, limit int) (*UsersPage, error) {
	var out *UsersPage
	err := c.call(ctx, "users", team, teamPath(team)+"/users", pageQuery(cursor, limit), func(b []byte) (err error) {
		out, err = DecodeUsersPage(team, b, limit)
		return err
	})
	return out, err
}

// ChannelsPage fetches one page of team's channels.
func (c *Client) ChannelsPage(ctx context.Context, team, cursor string, limit int) (*ChannelsPage, error) {
	var out *ChannelsPage
	err := c.call(ctx, "channels", team, teamPath(team)+"/channels", pageQuery(cursor, limit), func(b []byte) (err error) {
		out, err = DecodeChannelsPage(team, b, limit)
		return err
	})
	return out, err
}

// MembershipsPage fetches one page of team's memberships.
func (c *Client) MembershipsPage(ctx context.Context, team, cursor string, limit int) (*MembershipsPage, error) {
	var out *MembershipsPage
	err := c.call(ctx, "memberships", team, teamPath(team)+"/memberships", pageQuery(cursor, limit), func(b []byte) (err error) {
		out, err = DecodeMembershipsPage(team, b, limit)
		return err
	})
	return out, err
}

// User fetches one user; ErrNotFound when absent.
func (c *Client) User(ctx context.Context, team, id string) (*User, error) {
	var out *User
	err := c.call(ctx, "user", team, teamPath(team)+"/users/"+url.PathEscape(id), nil, func(b []byte) (err error) {
		out, err = DecodeUser(team, id, b)
		return err
	})
	return out, err
}

// Channel fetches one channel; ErrNotFound when absent.
func (c *Client) Channel(ctx context.Context, team, id string) (*Channel, error) {
	var out *Channel
	err := c.call(ctx, "channel", team, teamPath(team)+"/channels/"+url.PathEscape(id), nil, func(b []byte) (err error) {
		out, err = DecodeChannel(team, id, b)
		return err
	})
	return out, err
}

func teamPath(team string) string { return "/origin/v1/teams/" + url.PathEscape(team) }

func pageQuery(cursor string, limit int) url.Values {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// call performs one GET through the Guard, with the per-call timeout, and hands the body to
// decode. Decoding happens inside the guarded call so that a garbled answer counts as an answer
// (the origin is up), not as a failure.
func (c *Client) call(ctx context.Context, op, team, path string, q url.Values, decode func([]byte) error) error {
	u := *c.base
	u.Path += path
	u.RawPath = ""
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	target := u.String()
	run := func(parent context.Context) error {
		ctx, cancel := context.WithTimeout(parent, c.cfg.Timeout)
		defer cancel()
		body, status, err := c.get(ctx, target)
		if err != nil {
			if parent.Err() != nil {
				// The caller gave up: not the origin's fault, and not a failure to count.
				return fmt.Errorf("origin: %s %s: %w", op, team, parent.Err())
			}
			return c.classify(ctx, op, team, status, err)
		}
		if err := decode(body); err != nil {
			return &Error{Op: op, Team: team, Status: status, Kind: ErrBadResponse, Err: err}
		}
		return nil
	}
	return c.guard(ctx, run)
}

func (c *Client) guard(ctx context.Context, run func(context.Context) error) error {
	if c.cfg.Guard != nil {
		return c.cfg.Guard.Do(ctx, run)
	}
	return run(ctx)
}

// errStatus carries a non-2xx status out of get.
type errStatus struct {
	status int
	body   string
}

func (e *errStatus) Error() string {
	if e.body == "" {
		return http.StatusText(e.status)
	}
	return strings.TrimSpace(e.body)
}

func (c *Client) get(ctx context.Context, target string) ([]byte, int, error) {
	resp, err := c.do(ctx, target, "application/json")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, resp.StatusCode, statusError(resp)
	}
	body, err := c.readBody(resp.Body)
	return body, resp.StatusCode, err
}

func (c *Client) do(ctx context.Context, target, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	if c.header != "" {
		req.Header.Set("Authorization", c.header)
	}
	return c.http.Do(req)
}

// statusError reads the start of a failed answer's body into its error.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &errStatus{status: resp.StatusCode, body: string(b)}
}

// readBody reads a whole body of at most MaxBodyBytes.
func (c *Client) readBody(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, c.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > c.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadResponse, c.cfg.MaxBodyBytes)
	}
	return body, nil
}

func (c *Client) classify(ctx context.Context, op, team string, status int, err error) error {
	e := &Error{Op: op, Team: team, Status: status, Err: err}
	var se *errStatus
	var ne net.Error
	switch {
	case errors.Is(err, ErrBadResponse):
		e.Kind = ErrBadResponse
	case errors.As(err, &se):
		switch {
		case se.status == http.StatusNotFound:
			e.Kind = ErrNotFound
		case se.status == http.StatusTooManyRequests || se.status >= 500:
			e.Kind = ErrUnavailable
		default:
			e.Kind = ErrRejected
		}
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || ctx.Err() != nil:
		e.Kind = ErrTimeout
	default:
		e.Kind = ErrUnavailable // refused, reset, EOF: the origin cannot be reached
	}
	return e
}
