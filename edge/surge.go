package edge

import (
	"sync"
	"time"
)

// surge notices when this node takes over many teams at once (an edge was lost, and its teams
// arrive here with its clients) so that background work waits: the typo-fallback builds, a
// bleve index per team, would otherwise run while the node is busiest, and take CPU from
// the sessions it already serves. A deferred build is retried by the first search that needs
// it (index.Config.AdmitFuzzy).
type surge struct {
	loads  int           // team loads in window that make a surge; <= 0: never
	window time.Duration // how far back loads count

	mu     sync.Mutex
	starts []time.Time // load starts within window, oldest first
}

// loadStarted records a team load starting at now.
func (s *surge) loadStarted(now time.Time) {
	if s.loads <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trim(now)
	if len(s.starts) < 4*s.loads { // past the threshold, more entries say nothing new
		s.starts = append(s.starts, now)
	}
}

// active reports whether at least loads team loads started within window of now.
func (s *surge) active(now time.Time) bool {
	if s.loads <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trim(now)
	return len(s.starts) >= s.loads
}

func (s *surge) trim(now time.Time) {
	i := 0
	for i < len(s.starts) && now.Sub(s.starts[i]) > s.window {
		i++
	}
	if i > 0 {
		s.starts = append(s.starts[:0], s.starts[i:]...)
	}
}
