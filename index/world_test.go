package index_test

import (
	"sync"
	"testing"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin/reference"
)

// storeOf copies one team of a reference origin into a cache store, without HTTP: the index's
// tests and benchmarks are about the index, and the load path has its own.
func storeOf(tb testing.TB, srv *reference.Server, team string) *cache.Store {
	tb.Helper()
	st := cache.NewStore(team)
	st.ApplyUsers(srv.Users(team))
	st.ApplyChannels(srv.Channels(team))
	st.ApplyMemberships(srv.Memberships(team))
	return st
}

func worldServer(tb testing.TB, size string) *reference.Server {
	tb.Helper()
	sz, err := reference.SizeByName(size)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := reference.NewWorld(1, sz)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := reference.NewServer(reference.ServerConfig{World: w})
	if err != nil {
		tb.Fatal(err)
	}
	return srv
}

var giant struct {
	once  sync.Once
	srv   *reference.Server
	store *cache.Store
}

// giantStore is the giant team (366,000 users, 36,000 channels), built once per test binary.
func giantStore(tb testing.TB) (*reference.Server, *cache.Store) {
	giant.once.Do(func() {
		giant.srv = worldServer(tb, "giant")
		giant.store = storeOf(tb, giant.srv, giant.srv.TeamIDs()[0])
	})
	return giant.srv, giant.store
}
