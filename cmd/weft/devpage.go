package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	js "github.com/weft-edge/weft/clients/js"
	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/origin"
)

// The page of `weft dev`: clients/js's page and client module, served at / on the same
// listener as the edge (or the home proxy), so that its WebSocket is same-origin; and the
// dev-only GET /dev/users, the people the page offers to sign in as, each with a token. A
// production edge serves neither: its clients are apps that get tokens from their own login.

// devPageTeams and devPageUsers bound the people /dev/users lists: enough to pick a colleague
// from, small even for the giant world.
const (
	devPageTeams = 3
	devPageUsers = 12
)

// devUser is one person of /dev/users.
type devUser struct {
	Team        string `json:"team"`
	TeamName    string `json:"team_name"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	RealName    string `json:"real_name"`
	DisplayName string `json:"display_name"`
	Title       string `json:"title"`
	Token       string `json:"token"`
}

// devUsers makes /dev/users' answer once: the first users (deactivated ones left out: the edge
// refuses them) of the first teams, with tokens valid for a day.
func devUsers(teams []devTeam, keys *token.Keys) (http.Handler, error) {
	list := []devUser{}
	for _, t := range teams[:min(devPageTeams, len(teams))] {
		users := slices.DeleteFunc(slices.Clone(t.users), func(u origin.User) bool { return u.Deleted || u.IsBot })
		for _, u := range users[:min(devPageUsers, len(users))] {
			tok, err := keys.Issue(t.ID, u.ID, 24*time.Hour)
			if err != nil {
				return nil, err
			}
			list = append(list, devUser{Team: t.ID, TeamName: t.Name, ID: u.ID, Name: u.Name, RealName: u.RealName,
				DisplayName: u.DisplayName, Title: u.Title, Token: tok})
		}
	}
	body, err := json.Marshal(map[string]any{"users": list})
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store") // tokens
		_, _ = w.Write(body)
	}), nil
}

// devFront serves the page and /dev/users, and hands every other request (/ws, /api/…,
// probes) to next, the edge or proxy.
func devFront(users http.Handler) func(http.Handler) http.Handler {
	page := js.Page()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/dev/users" && r.Method == http.MethodGet:
				users.ServeHTTP(w, r)
			case js.Paths(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead):
				page.ServeHTTP(w, r)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
