package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/weft-edge/weft/origin/reference"
)

// The write API: the reference origin's events endpoint, in the same shape, so that the load
// tests drive either origin (reference.EventsRequest):
//
//	POST /origin/admin/teams/{team}/events
//	{"type":"message","channel":"C…","user":"U…","text":"hi","mentions":["U…"],"count":100}
//	{"type":"user_change","user":"U…","title":"…","count":200}
//
// Each repetition is one transaction writing the tables; the triggers give it its seq and its
// event, as they do for any program writing them. The answer comes once every change is
// committed ("published" counts them, first_seq and last_seq are theirs); the publisher puts
// them on the stream a moment later. Nothing is applied of a change the database refuses (an
// unknown user or channel, a poster not in the channel): 400, with how many went before it.

func (s *Server) handlePostEvents(w http.ResponseWriter, r *http.Request) {
	team := r.PathValue("team")
	req, err := decodeEventsRequest(r.Body)
	if err != nil {
		writeReply(w, http.StatusBadRequest, reference.EventsReply{Error: "invalid_request", Message: err.Error()})
		return
	}
	var exists bool
	if err := s.pool.QueryRow(r.Context(), `SELECT EXISTS (SELECT 1 FROM weft_teams WHERE id = $1)`, team).Scan(&exists); err != nil {
		s.failed(w, r, err)
		return
	}
	if !exists {
		writeError(w, http.StatusNotFound, "team_not_found", "")
		return
	}
	var reply reference.EventsReply
	for i := range req.Count {
		seq, err := s.change(r, team, req)
		if err != nil {
			status, code := http.StatusServiceUnavailable, "database_unavailable"
			var pe *pgconn.PgError
			if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "23") || pe.Code == "P0001") || errors.Is(err, errRefused) {
				status, code = http.StatusBadRequest, "invalid_request" // a constraint or trigger refused it
			}
			reply.Error, reply.Message = code, fmt.Sprintf("change %d of %d: %v", i+1, req.Count, err)
			writeReply(w, status, reply)
			return
		}
		if reply.FirstSeq == 0 {
			reply.FirstSeq = seq
		}
		reply.LastSeq = seq
		reply.Published++
	}
	reply.OK = true
	writeReply(w, http.StatusOK, reply)
}

// errRefused marks a change this origin refuses before the database does.
var errRefused = errors.New("refused")

// change makes one repetition of req in its own transaction and returns its seq.
func (s *Server) change(r *http.Request, team string, req reference.EventsRequest) (int64, error) {
	var seq int64
	switch req.Type {
	case "message":
		// The poster must be in the channel, as in the reference origin.
		err := s.pool.QueryRow(r.Context(), `
			INSERT INTO weft_messages (team, channel, user_id, text, mentions)
			SELECT $1, $2, $3, $4, $5 WHERE EXISTS (
				SELECT 1 FROM weft_memberships WHERE team = $1 AND channel = $2 AND user_id = $3)
			RETURNING seq`, team, req.Channel, req.User, req.Text, nonNil(req.Mentions)).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("%w: %s is not a member of %s", errRefused, req.User, req.Channel)
		}
		return seq, err
	case "user_change":
		// updated is the change's seq + 1 (the trigger's stamp).
		err := s.pool.QueryRow(r.Context(), `
			UPDATE weft_users SET title = coalesce($3, title), display_name = coalesce($4, display_name),
				real_name = coalesce($5, real_name)
			WHERE team = $1 AND id = $2 RETURNING updated - 1`,
			team, req.User, req.Title, req.DisplayName, req.RealName).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("%w: no user %s", errRefused, req.User)
		}
		return seq, err
	}
	return 0, fmt.Errorf("unknown type %q", req.Type)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// decodeEventsRequest reads a request as the reference origin does, and refuses what this
// origin cannot make before it touches the database.
func decodeEventsRequest(body io.Reader) (reference.EventsRequest, error) {
	req, err := reference.DecodeEventsRequest(body)
	if err != nil {
		return req, err
	}
	switch {
	case req.Type != "message" && req.Type != "user_change":
		return req, fmt.Errorf("type %q: want message or user_change", req.Type)
	case req.Type == "message" && (req.Channel == "" || req.Text == ""):
		return req, errors.New("a message needs channel and text")
	}
	return req, nil
}

func writeReply(w http.ResponseWriter, status int, reply reference.EventsReply) {
	body, _ := json.Marshal(reply)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
