package reference

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weft-edge/weft/origin"
)

func TestFaultErrorRate(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	path := "/origin/v1/teams/" + s.TeamIDs()[0]
	s.SetFaults(Faults{ErrorRate: 1})
	refWantError(t, hs, "", path, http.StatusInternalServerError, "injected_fault")
	s.SetFaults(Faults{ErrorRate: 0.5})
	failed := 0
	for range 200 {
		if status, _ := refGet(t, hs, "", path); status == http.StatusInternalServerError {
			failed++
		}
	}
	if failed < 50 || failed > 150 {
		t.Fatalf("error rate 0.5: %d of 200 failed", failed)
	}
	s.SetFaults(Faults{})
	if status, _ := refGet(t, hs, "", path); status != http.StatusOK {
		t.Fatalf("faults off: %d", status)
	}
}

func TestFaultLatencyHonoursContext(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	s.SetFaults(Faults{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/origin/v1/teams/"+s.TeamIDs()[0], nil)
	if resp, err := hs.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("request under an hour of latency: %v, want the deadline", err)
	}
	// Admin is never delayed, and the delayed handler has returned: hs.Close in cleanup would
	// hang for an hour otherwise.
	var f Faults
	refGetJSON(t, hs, "/origin/admin/faults", &f)
	if f.Latency != time.Hour {
		t.Fatalf("admin faults %+v", f)
	}
	s.SetFaults(Faults{Latency: time.Millisecond})
	refGetJSON(t, hs, "/origin/v1/teams/"+s.TeamIDs()[0], &origin.TeamInfo{})
}

func TestFaultDownAndBack(t *testing.T) {
	s, hs := refServe(t, ServerConfig{})
	path := hs.URL + "/origin/v1/teams/" + s.TeamIDs()[0]
	s.SetFaults(Faults{Down: true})
	for range 3 { // fresh and kept-alive connections alike are dropped
		resp, err := hs.Client().Get(path)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("origin down: got HTTP %d, want no response", resp.StatusCode)
		}
	}
	body := strings.NewReader(`{"latency":"0s","error_rate":0,"down":false}`)
	resp, err := hs.Client().Post(hs.URL+"/origin/admin/faults", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.Faults().Down {
		t.Fatalf("switching down off: %d, faults %+v", resp.StatusCode, s.Faults())
	}
	refGetJSON(t, hs, "/origin/v1/teams/"+s.TeamIDs()[0], &origin.TeamInfo{})
}

func TestFaultsAdminEndpoint(t *testing.T) {
	s, hs := refServe(t, ServerConfig{Token: "tok"})
	post := func(token, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/origin/admin/faults", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("", `{"down":true}`); code != http.StatusUnauthorized || s.Faults().Down {
		t.Fatalf("unauthenticated admin: %d, faults %+v", code, s.Faults())
	}
	if code := post("tok", `{"latency":"200ms","error_rate":0.25}`); code != http.StatusOK {
		t.Fatalf("admin: %d", code)
	}
	if f := s.Faults(); f != (Faults{Latency: 200 * time.Millisecond, ErrorRate: 0.25}) {
		t.Fatalf("faults %+v", f)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"error_rate":2}`, `{"latency":"-1s"}`, `nope`} {
		if code := post("tok", bad); code != http.StatusBadRequest {
			t.Errorf("admin body %s: %d, want 400", bad, code)
		}
	}
	if f := s.Faults(); f.Latency != 200*time.Millisecond {
		t.Fatalf("a refused body changed the faults: %+v", f)
	}
	b, _ := json.Marshal(Faults{Latency: 1500 * time.Millisecond, Down: true})
	if string(b) != `{"latency":"1.5s","error_rate":0,"down":true}` {
		t.Fatalf("faults JSON %s", b)
	}
	s.SetFaults(Faults{Latency: -time.Second, ErrorRate: 7})
	if f := s.Faults(); f.Latency != 0 || f.ErrorRate != 1 {
		t.Fatalf("SetFaults does not clamp: %+v", f)
	}
}
