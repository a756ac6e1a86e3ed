package origin_test

import (
	"net/http/httptest"
	"testing"

	"github.com/weft-edge/weft/origin/reference"
)

// The contract's tests run the client against the reference origin. They live in package
// origin_test because origin/reference imports origin: an internal test of origin could not
// import it.

// smallWorld is big enough for paging over several teams and small enough for -race.
var smallWorld = reference.Size{Name: "origintest", Teams: 2, Users: 150, Channels: 25, ChannelsPerUser: 5}

// serveReference starts a reference origin (with a world of smallWorld when cfg.World is nil)
// over loopback.
func serveReference(t testing.TB, cfg reference.ServerConfig) (*reference.Server, *httptest.Server) {
	t.Helper()
	if cfg.World == nil {
		w, err := reference.NewWorld(7, smallWorld)
		if err != nil {
			t.Fatalf("NewWorld: %v", err)
		}
		cfg.World = w
	}
	s, err := reference.NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}
