package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/internal/testkit/backend"
	"github.com/weft-edge/weft/origin"
	"github.com/weft-edge/weft/origin/reference"
	"github.com/weft-edge/weft/pubsub"
)

// Benchmarks of docs/architecture.md's performance budgets (cold loads, the giant team's among them). Run them with, for example:
//
//	go test ./cache -run '^$' -bench . -benchtime 1x        # loads: one load per run
//	go test ./cache -run '^$' -bench 'Giant(Lookup|Apply)'  # lookups and apply on giant
//
// The loads go through everything real: the reference origin over loopback HTTP, the embedded
// NATS server, the whole Teams load path.

func heapMiB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

func benchLoad(b *testing.B, size string) {
	bus := backend.Bus(b, backend.NATS(b), pubsub.Config{})
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.Cleanup(hc.CloseIdleConnections)
	orig := backend.NewOrigin(b, backend.OriginConfig{World: backend.World(b, 1, size), Publisher: bus,
		Client: origin.ClientConfig{HTTPClient: hc, Timeout: time.Minute}})
	client, team := orig.Client, orig.TeamIDs()[0]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		teams, err := cache.New(cache.Config{Origin: client, Feed: bus, LoadTimeout: 5 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		base := heapMiB()
		b.StartTimer()
		begin := time.Now()
		tm, err := teams.Acquire(context.Background(), team)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(begin)
		b.StopTimer()
		users, chans := tm.Store().Counts()
		b.ReportMetric(took.Seconds(), "load-s")
		b.ReportMetric(heapMiB()-base, "heap-MiB")
		b.ReportMetric(float64(tm.Store().Bytes())/(1<<20), "est-MiB")
		b.ReportMetric(float64(users), "users")
		b.ReportMetric(float64(chans), "channels")
		tm.Release()
		teams.Shutdown(context.Background())
		b.StartTimer()
	}
}

func BenchmarkLoad32k(b *testing.B)   { benchLoad(b, "32k") }
func BenchmarkLoadGiant(b *testing.B) { benchLoad(b, "giant") }

// giantStore is one snapshot of the giant team, shared by the lookup benchmarks.
var giantStore = sync.OnceValues(func() (*cache.Store, error) {
	sz, _ := reference.SizeByName("giant")
	world, err := reference.NewWorld(1, sz)
	if err != nil {
		return nil, err
	}
	srv, err := reference.NewServer(reference.ServerConfig{World: world})
	if err != nil {
		return nil, err
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	client, err := origin.NewClient(origin.ClientConfig{BaseURL: hs.URL, HTTPClient: hc, Timeout: time.Minute})
	if err != nil {
		return nil, err
	}
	return cache.Snapshot(context.Background(), client, srv.TeamIDs()[0], 50_000_000)
})

func giant(b *testing.B) (*cache.Store, []origin.User) {
	st, err := giantStore()
	if err != nil {
		b.Fatal(err)
	}
	users, _, err := st.UsersPage("", 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.ReportAllocs()
	return st, users
}

// users.info of 10 users spread over the team.
func BenchmarkGiantLookupUsersInfo10(b *testing.B) {
	st, users := giant(b)
	ids := make([]string, 10)
	for i := 0; b.Loop(); i++ {
		for k := range ids {
			ids[k] = users[(i*7919+k*104729)%len(users)].ID
		}
		if found, _ := st.Users(ids); len(found) != 10 {
			b.Fatal("missing users")
		}
	}
}

// channels.members, first page of 200, of channels from the biggest to the smallest.
func BenchmarkGiantLookupChannelMembers200(b *testing.B) {
	st, users := giant(b)
	chans, _, _ := st.UserChannels(users[0].ID, "", "", 1000)
	for i := 0; b.Loop(); i++ {
		if _, _, err := st.ChannelMembers(chans[i%len(chans)], users[0].ID, "", 200); err != nil {
			b.Fatal(err)
		}
	}
}

// channels.members, a page of 200 deep inside #general (366K members) through a cursor.
func BenchmarkGiantLookupGeneralMembersDeepPage(b *testing.B) {
	st, users := giant(b)
	general := ""
	self, _, chans, _, _ := st.Boot(users[0].ID)
	for _, c := range chans {
		if c.Name == "general" {
			general = c.ID
		}
	}
	_, cursor, err := st.ChannelMembers(general, self.ID, "", 180_000)
	if err != nil || cursor == "" {
		b.Fatalf("no cursor: %v", err)
	}
	b.ResetTimer()
	for b.Loop() {
		if page, _, err := st.ChannelMembers(general, self.ID, cursor, 200); err != nil || len(page) != 200 {
			b.Fatal(err, len(page))
		}
	}
}

// users.channels of another user, as the caller sees them (private channels filtered).
func BenchmarkGiantLookupUserChannels(b *testing.B) {
	st, users := giant(b)
	for i := 0; b.Loop(); i++ {
		u := users[(i*7919)%len(users)].ID
		if _, _, err := st.UserChannels(u, users[1].ID, "", 100); err != nil {
			b.Fatal(err)
		}
	}
}

// boot of a user: self, team and their channels.
func BenchmarkGiantLookupBoot(b *testing.B) {
	st, users := giant(b)
	for i := 0; b.Loop(); i++ {
		if _, _, _, _, err := st.Boot(users[(i*7919)%len(users)].ID); err != nil {
			b.Fatal(err)
		}
	}
}

// Events applied per second on the giant store: a mix of 80% messages, 10% profile changes,
// 10% joins and leaves of channels of every size.
func BenchmarkGiantApplyEvents(b *testing.B) {
	st, users := giant(b)
	chans, _, _ := st.UserChannels(users[0].ID, "", "", 1000)
	seq := st.Seq()
	for i := 0; b.Loop(); i++ {
		seq++
		ev := &origin.Event{Team: st.ID(), Seq: seq}
		u := users[(i*7919)%len(users)]
		c := chans[i%len(chans)]
		switch i % 10 {
		case 0:
			ev.Type = origin.EventUserChange
			u.Title = fmt.Sprint("t", i)
			u.Updated = seq + 1_000_000
			ev.User = &u
		case 1:
			if i%20 == 1 {
				ev.Type = origin.EventMemberJoined
			} else {
				ev.Type = origin.EventMemberLeft
			}
			ev.ChannelID, ev.UserID, ev.Updated = c, u.ID, seq+1_000_000
		default:
			ev.Type = origin.EventMessage
			ev.ChannelID, ev.UserID, ev.Text = c, u.ID, "hello"
		}
		if _, ok := st.ApplyEvent(ev); !ok {
			b.Fatal("refused")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
