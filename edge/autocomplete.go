package edge

import (
	"context"
	"errors"
	"time"

	"github.com/weft-edge/weft/index"
	"github.com/weft-edge/weft/protocol"
)

// autocomplete is the Quick Switcher method (docs/protocol.md section 4); the index package does the
// matching and ranking, this is the protocol side: parameters, limits, errors.

type autocompleteParams struct {
	Query           *string  `json:"query"`
	Types           []string `json:"types"`
	Limit           *int     `json:"limit"`
	IncludeInactive bool     `json:"include_inactive"`
}

type autocompleteResult struct {
	Results []index.Result `json:"results"`
}

// maxQueryBytes bounds a query: nobody types more into a switcher, and every byte is folded.
const maxQueryBytes = 256

// indexWait bounds how long a request waits for a just-loaded team's index to be built.
const indexWait = 10 * time.Second

func methodAutocomplete(c *call) (any, *protocol.Error) {
	var p autocompleteParams
	if e := decodeParams(c.params, &p); e != nil {
		return nil, e
	}
	if p.Query == nil {
		return nil, errorf(protocol.CodeInvalidRequest, "params.query is required")
	}
	if len(*p.Query) > maxQueryBytes {
		return nil, errorf(protocol.CodeInvalidRequest, "params.query must be at most %d bytes, got %d", maxQueryBytes, len(*p.Query))
	}
	q := index.Query{Text: *p.Query, Caller: c.user, IncludeInactive: p.IncludeInactive, Limit: index.DefaultLimit}
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > index.MaxLimit {
			return nil, errorf(protocol.CodeInvalidRequest, "params.limit must be 1 to %d, got %d", index.MaxLimit, *p.Limit)
		}
		q.Limit = *p.Limit
	}
	for _, t := range p.Types {
		switch t {
		case "users":
			q.Users = true
		case "channels":
			q.Channels = true
		default:
			return nil, errorf(protocol.CodeInvalidRequest, `params.types may list only "users" and "channels", got %q`, t)
		}
	}
	x, ok := c.store.Follower().(*index.Index)
	if !ok {
		return nil, errorf(protocol.CodeInternal, "autocomplete index unavailable")
	}
	ctx, cancel := context.WithTimeout(c.ctx, indexWait)
	defer cancel()
	res, err := x.Search(ctx, q)
	switch {
	case err == nil:
		return autocompleteResult{Results: res}, nil
	case errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil:
		return nil, &protocol.Error{Code: protocol.CodeOverloaded, Message: "the team's autocomplete index is still being built",
			RetryAfterMS: 1000}
	case errors.Is(err, index.ErrClosed):
		// The team was reloaded or unloaded under the request: the next one finds the new index.
		return nil, &protocol.Error{Code: protocol.CodeOverloaded, Message: "the team is being reloaded", RetryAfterMS: 100}
	}
	return nil, errorf(protocol.CodeInternal, "autocomplete: %v", err)
}
