package ring_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/ring"
	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/backend"
)

// collector keeps what a watcher was handed.
type collector struct {
	mu  sync.Mutex
	got []ring.Announcement
}

func (c *collector) add(a ring.Announcement) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, a)
}

func (c *collector) all() []ring.Announcement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// TestAnnouncementsOverNATS: what Announce publishes, WatchEdges delivers as it was sent;
// malformed and invalid announcements are dropped, not delivered; an invalid one is not even
// published; stop ends the subscription.
func TestAnnouncementsOverNATS(t *testing.T) {
	emb := backend.ListeningNATS(t)
	nc := backend.Conn(t, emb)
	an := ring.Announcements{Conn: nc}

	var first, second collector
	stop, err := an.WatchEdges(first.add)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	stop2, err := an.WatchEdges(second.add)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()

	if err := an.Announce(ring.Announcement{Node: "e1", Addr: "127.0.0.1:1", State: "bogus", IntervalMS: 100}); err == nil {
		t.Error("an announcement with an unknown state was published")
	}
	for _, raw := range []string{`not json`, `{"node":"e1","addr":"x","state":"serving","interval_ms":0}`} {
		if err := nc.Publish(ring.AnnounceSubject, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	want := ring.Announcement{Node: "e1", Addr: "127.0.0.1:1", State: ring.EdgeServing, Region: "eu-west", Sessions: 3, Teams: 2,
		Admitting: true, LagP99MS: 1.5, IntervalMS: 100, Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := an.Announce(want); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool { return len(first.all()) > 0 }, "the announcement")
	// One subscription delivers in arrival order: had the bad ones been delivered, they came first.
	if got := first.all(); len(got) != 1 || !got[0].Started.Equal(want.Started) {
		t.Fatalf("delivered %+v, want only %+v", got, want)
	} else if got[0].Started = want.Started; got[0] != want {
		t.Fatalf("delivered %+v, want %+v", got[0], want)
	}

	stop()
	later := want
	later.Sessions = 4
	if err := an.Announce(later); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool { return len(second.all()) == 2 }, "the second watcher to hear the later announcement")
	if got := first.all(); len(got) != 1 {
		t.Errorf("a stopped watcher was handed %+v", got[1:])
	}
}

// TestRegionNames: what a region may be called, and an announcement naming a bad one is
// invalid (one naming none is in the default region).
func TestRegionNames(t *testing.T) {
	for _, ok := range []string{"default", "eu-west-1", "US_East.2", strings.Repeat("r", 64)} {
		if err := ring.CheckRegion(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "eu west", "eu/west", "é", strings.Repeat("r", 65), "a,b"} {
		if err := ring.CheckRegion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	a := ring.Announcement{Node: "e1", Addr: "127.0.0.1:1", State: ring.EdgeServing, IntervalMS: 100}
	if err := a.Validate(); err != nil {
		t.Errorf("no region: %v", err)
	}
	a.Region = "eu,us"
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("bad region: %v", err)
	}
	if ring.RegionOr("") != ring.DefaultRegion || ring.RegionOr("eu") != "eu" {
		t.Error("RegionOr")
	}
}
