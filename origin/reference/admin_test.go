package reference

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/weft-edge/weft/origin"
)

type refAdminReply struct {
	OK        bool   `json:"ok"`
	Published int    `json:"published"`
	FirstSeq  int64  `json:"first_seq"`
	LastSeq   int64  `json:"last_seq"`
	Error     string `json:"error"`
	Message   string `json:"message"`
}

// refPostEvents posts body to team's events endpoint with token (when not "").
func refPostEvents(t *testing.T, hs *httptest.Server, token, team, body string) (int, refAdminReply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/origin/admin/teams/"+team+"/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var reply refAdminReply
	if err := json.Unmarshal(data, &reply); err != nil {
		t.Fatalf("POST events %s: %d, body %q: %v", body, resp.StatusCode, data, err)
	}
	return resp.StatusCode, reply
}

func TestAdminEventsUserChange(t *testing.T) {
	pub := &refPublisher{}
	s, hs := refServe(t, ServerConfig{Token: "tok", Publisher: pub})
	team := s.TeamIDs()[1]
	before := s.Users(team)[3]
	status, reply := refPostEvents(t, hs, "tok", team,
		`{"type":"user_change","user":"`+before.ID+`","title":"Load tester","count":3}`)
	if status != http.StatusOK || !reply.OK || reply.Published != 3 || reply.FirstSeq != 1 || reply.LastSeq != 3 {
		t.Fatalf("user_change ×3: %d %+v", status, reply)
	}
	if got := pub.seqs(team); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("published seqs %v, want [1 2 3]", got)
	}
	for _, ev := range pub.all() {
		if ev.Type != origin.EventUserChange || ev.User.ID != before.ID || ev.User.Title != "Load tester" {
			t.Fatalf("published %+v (user %+v)", ev, ev.User)
		}
	}
	after, _ := s.User(team, before.ID)
	if after.Title != "Load tester" || after.RealName != before.RealName || after.DisplayName != before.DisplayName ||
		after.Updated <= before.Updated {
		t.Fatalf("user after: %+v, before %+v", after, before)
	}
	if s.Seq(team) != 3 || s.Seq(s.TeamIDs()[0]) != 0 {
		t.Fatalf("seqs: %d and %d", s.Seq(team), s.Seq(s.TeamIDs()[0]))
	}
}

func TestAdminEventsMessage(t *testing.T) {
	pub := &refPublisher{}
	s, hs := refServe(t, ServerConfig{Publisher: pub})
	team := s.TeamIDs()[0]
	users := s.Users(team)
	user, mention := users[0], users[1]
	channel := s.ChannelsOf(team, user.ID)[0]
	status, reply := refPostEvents(t, hs, "", team, `{"type":"message","channel":"`+channel+`","user":"`+user.ID+
		`","text":"hi <@`+mention.ID+`>","mentions":["`+mention.ID+`"]}`)
	if status != http.StatusOK || reply.Published != 1 || reply.FirstSeq != 1 || reply.LastSeq != 1 {
		t.Fatalf("message: %d %+v", status, reply)
	}
	evs := pub.all()
	if len(evs) != 1 {
		t.Fatalf("%d events published", len(evs))
	}
	ev := evs[0]
	if ev.Type != origin.EventMessage || ev.ChannelID != channel || ev.UserID != user.ID || ev.TS == "" ||
		ev.Text != "hi <@"+mention.ID+">" || !slices.Equal(ev.Mentions, []string{mention.ID}) {
		t.Fatalf("published %+v", ev)
	}
}

func TestAdminEventsRefuses(t *testing.T) {
	pub := &refPublisher{}
	s, hs := refServe(t, ServerConfig{Token: "tok", Publisher: pub})
	team := s.TeamIDs()[0]
	user := s.Users(team)[0].ID
	member := s.ChannelsOf(team, user)[0]
	outside, outsider := refOpenChannel(t, s, team)

	if status, _ := refPostEvents(t, hs, "", team, `{"type":"user_change","user":"`+user+`"}`); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", status)
	}
	if status, _ := refPostEvents(t, hs, "wrong", team, `{"type":"user_change","user":"`+user+`"}`); status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", status)
	}
	if status, reply := refPostEvents(t, hs, "tok", "T99999999", `{"type":"user_change","user":"`+user+`"}`); status != http.StatusNotFound ||
		reply.Error != "team_not_found" {
		t.Fatalf("unknown team: %d %+v", status, reply)
	}
	// The user of another team: this team has no such user.
	otherUser := s.Users(s.TeamIDs()[1])[0].ID
	for _, bad := range []struct{ body, says string }{
		{`nope`, "body"},
		{`{"type":"user_change","user":"` + user + `"} trailing`, "trailing"},
		{`{}`, "user is required"},
		{`{"user":"` + user + `"}`, "type is required"},
		{`{"type":"channel_deleted","user":"` + user + `"}`, `type "channel_deleted"`},
		{`{"type":"user_change","user":"` + user + `","titel":"x"}`, "titel"},
		{`{"type":"user_change","user":"` + user + `","count":-1}`, "count -1"},
		{`{"type":"user_change","user":"` + user + `","count":100001}`, "count 100001"},
		{`{"type":"user_change","user":"` + otherUser + `"}`, "no user"},
		{`{"type":"user_change","user":"` + user + `","text":"x"}`, "belong to message"},
		{`{"type":"message","user":"` + user + `","channel":"` + member + `","text":"x","title":"t"}`, "belong to user_change"},
		{`{"type":"message","user":"` + user + `","channel":"` + member + `"}`, "empty message"},
		{`{"type":"message","user":"` + user + `","channel":"C-nope","text":"x"}`, "no channel"},
		{`{"type":"message","user":"` + outsider + `","channel":"` + outside + `","text":"x","count":5}`, "not in channel"},
		{`{"type":"message","user":"` + user + `","channel":"` + member + `","text":"x","mentions":["U-nope"]}`, "mention"},
	} {
		status, reply := refPostEvents(t, hs, "tok", team, bad.body)
		if status != http.StatusBadRequest || reply.OK || reply.Error != "invalid_request" || reply.Published != 0 ||
			!strings.Contains(reply.Message, bad.says) {
			t.Errorf("body %s: %d %+v, want 400 invalid_request saying %q", bad.body, status, reply, bad.says)
		}
	}
	if evs := pub.all(); len(evs) != 0 || s.Seq(team) != 0 {
		t.Fatalf("refused requests published %d events, seq %d", len(evs), s.Seq(team))
	}
}

func TestAdminEventsPublishFails(t *testing.T) {
	pub := &refPublisher{}
	s, hs := refServe(t, ServerConfig{Publisher: pub})
	team := s.TeamIDs()[0]
	user := s.Users(team)[0].ID
	pub.setFailing(true)
	status, reply := refPostEvents(t, hs, "", team, `{"type":"user_change","user":"`+user+`","title":"x","count":4}`)
	if status != http.StatusBadGateway || reply.Error != "publish_failed" || reply.Published != 0 || reply.FirstSeq != 1 {
		t.Fatalf("bus down: %d %+v, want 502 publish_failed after 0", status, reply)
	}
	// The applied change goes out, with its seq, before the next one.
	pub.setFailing(false)
	status, reply = refPostEvents(t, hs, "", team, `{"type":"user_change","user":"`+user+`","title":"y","count":2}`)
	if status != http.StatusOK || reply.FirstSeq != 2 || reply.LastSeq != 3 {
		t.Fatalf("bus back: %d %+v", status, reply)
	}
	if got := pub.seqs(team); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("published seqs %v, want [1 2 3]", got)
	}
}
