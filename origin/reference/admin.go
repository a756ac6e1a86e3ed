package reference

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/weft-edge/weft/origin"
)

// The events admin endpoint lets load tests and demos drive a team's event stream on demand:
//
//	POST /origin/admin/teams/{team}/events
//	{"type":"message","channel":"C…","user":"U…","text":"hi","mentions":["U…"],"count":100}
//	{"type":"user_change","user":"U…","title":"…","count":200}
//
// Each of the count repetitions (default 1) is one change through the Server's mutation
// methods, so it takes the next seq and is published like any other; the answer comes once all
// are published: {"ok":true,"published":N,"first_seq":…,"last_seq":…}. Like every admin
// endpoint it needs the service token when one is set, and faults never apply to it.
//
// Errors: 404 team_not_found; 400 invalid_request with a "message" for a body that is not
// JSON, an unknown type or a count out of range, and for a change the origin refuses (unknown
// user or channel, a poster who is not a member, empty text): nothing is applied then, because
// the first repetition is refused before any seq is used. A publish that fails midway answers
// 502 publish_failed with how many were published before it.

// maxAdminCount caps the repetitions of one request, so one request cannot hold a team's
// changes for minutes.
const maxAdminCount = 100_000

// EventsRequest is the body of the events endpoint: a message (Channel, User, Text, Mentions)
// or a user_change (User and the fields to set: a nil one leaves the user's value alone),
// repeated Count times (0: once). Load tests send it (loadtest.PostEvents).
type EventsRequest struct {
	Type     string   `json:"type"`
	Channel  string   `json:"channel,omitempty"`
	User     string   `json:"user"`
	Text     string   `json:"text,omitempty"`
	Mentions []string `json:"mentions,omitempty"`

	Title       *string `json:"title,omitempty"`
	DisplayName *string `json:"display_name,omitempty"`
	RealName    *string `json:"real_name,omitempty"`

	Count int `json:"count,omitempty"`
}

// EventsReply is the events endpoint's answer: OK once every event is published; otherwise
// Error and Message say why, and Published how many went out before it.
type EventsReply struct {
	OK        bool   `json:"ok"`
	Published int    `json:"published"`
	FirstSeq  int64  `json:"first_seq,omitempty"`
	LastSeq   int64  `json:"last_seq,omitempty"`
	Error     string `json:"error,omitempty"`
	Message   string `json:"message,omitempty"`
}

func (s *Server) handlePostEvents(w http.ResponseWriter, r *http.Request) {
	team := r.PathValue("team")
	if s.team(team) == nil {
		writeError(w, http.StatusNotFound, "team_not_found")
		return
	}
	req, err := DecodeEventsRequest(r.Body)
	if err != nil {
		writeAdminReply(w, http.StatusBadRequest, EventsReply{Error: "invalid_request", Message: err.Error()})
		return
	}
	change, err := s.adminChange(team, req)
	if err != nil {
		writeAdminReply(w, http.StatusBadRequest, EventsReply{Error: "invalid_request", Message: err.Error()})
		return
	}
	var reply EventsReply
	for i := range req.Count {
		ev, err := change(r)
		if ev != nil { // a failed publish still used its seq: the event goes out later
			if reply.FirstSeq == 0 {
				reply.FirstSeq = ev.Seq
			}
			reply.LastSeq = ev.Seq
		}
		if err != nil {
			status, code := http.StatusBadGateway, "publish_failed"
			switch {
			case errors.Is(err, ErrEventTooLarge):
				status, code = http.StatusRequestEntityTooLarge, "too_large"
			case errors.Is(err, ErrBadChange):
				status, code = http.StatusBadRequest, "invalid_request"
			}
			reply.Error, reply.Message = code, fmt.Sprintf("event %d of %d: %v", i+1, req.Count, err)
			s.log.Debug("origin: admin events stopped", "team", team, "published", reply.Published, "err", err)
			writeAdminReply(w, status, reply)
			return
		}
		reply.Published++
	}
	reply.OK = true
	s.log.Debug("origin: admin events published", "team", team, "type", req.Type, "count", req.Count,
		"first_seq", reply.FirstSeq, "last_seq", reply.LastSeq)
	writeAdminReply(w, http.StatusOK, reply)
}

// DecodeEventsRequest reads and checks the body's shape (at most 64 KiB, no unknown field,
// count within bounds, 0 read as 1, a user); an origin's rules on the change itself are
// checked when it is applied. The origin on PostgreSQL takes the same requests.
func DecodeEventsRequest(body io.Reader) (EventsRequest, error) {
	var req EventsRequest
	data, err := io.ReadAll(io.LimitReader(body, 64<<10+1))
	if err != nil {
		return req, fmt.Errorf("reading the body: %w", err)
	}
	if len(data) > 64<<10 {
		return req, errors.New("body over 64 KiB")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt field would otherwise be silently ignored
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errors.New("body: trailing data after the JSON object")
	}
	switch {
	case req.Count < 0 || req.Count > maxAdminCount:
		return req, fmt.Errorf("count %d outside [1, %d]", req.Count, maxAdminCount)
	case req.Count == 0:
		req.Count = 1
	}
	if req.User == "" {
		return req, errors.New("user is required")
	}
	return req, nil
}

// adminChange returns the mutation one repetition of req makes.
func (s *Server) adminChange(team string, req EventsRequest) (func(*http.Request) (*origin.Event, error), error) {
	switch req.Type {
	case origin.EventMessage:
		if req.Title != nil || req.DisplayName != nil || req.RealName != nil {
			return nil, errors.New("message: title, display_name and real_name belong to user_change")
		}
		return func(r *http.Request) (*origin.Event, error) {
			return s.PostMessage(r.Context(), team, req.Channel, req.User, req.Text, req.Mentions)
		}, nil
	case origin.EventUserChange:
		if req.Channel != "" || req.Text != "" || req.Mentions != nil {
			return nil, errors.New("user_change: channel, text and mentions belong to message")
		}
		return func(r *http.Request) (*origin.Event, error) {
			return s.UpdateUser(r.Context(), team, req.User, func(u *origin.User) {
				setIf(&u.Title, req.Title)
				setIf(&u.DisplayName, req.DisplayName)
				setIf(&u.RealName, req.RealName)
			})
		}, nil
	case "":
		return nil, errors.New("type is required: message or user_change")
	}
	return nil, fmt.Errorf("type %q: want message or user_change", req.Type)
}

func setIf(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func writeAdminReply(w http.ResponseWriter, status int, reply EventsReply) {
	body, _ := json.Marshal(reply)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
