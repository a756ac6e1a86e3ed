package edge

import (
	"sync"
	"time"

	"github.com/weft-edge/weft/internal/bucket"
)

// apiQuotas are the /api request quotas, one per user, at a session's rate and burst
// (Config.RequestRate, RequestBurst): calling over /api gets a user no more than calling on
// a connection does, and one token's flood of concurrent calls is refused past the burst
// rather than served. A user's bucket that has refilled is the same as a new one, so it is
// dropped then, at the latest a sweep later: the map holds the users who called lately.
type apiQuotas struct {
	rate  float64 // <= 0: unlimited
	burst int
	full  int64 // ns for an unused bucket to refill

	mu    sync.Mutex
	users map[quotaKey]*apiQuota
	sweep int64 // the next sweep, bucket clock
}

type quotaKey struct{ team, user string }

type apiQuota struct {
	b    bucket.Bucket
	last int64 // the last take, bucket clock
}

func newAPIQuotas(rate float64, burst int) *apiQuotas {
	q := &apiQuotas{rate: rate, burst: max(burst, 1), users: map[quotaKey]*apiQuota{}}
	if rate > 0 {
		q.full = int64(float64(q.burst) / rate * float64(time.Second))
	}
	return q
}

// take takes a token of user's quota at now; when there is none it says how long until there
// will be one.
func (q *apiQuotas) take(team, user string, now int64) (bool, time.Duration) {
	if q.rate <= 0 {
		return true, 0
	}
	k := quotaKey{team, user}
	q.mu.Lock()
	if now >= q.sweep {
		for uk, u := range q.users {
			if now-u.last >= q.full {
				delete(q.users, uk)
			}
		}
		q.sweep = now + max(q.full, int64(10*time.Second)) // a sweep is O(users): not on every call
	}
	u := q.users[k]
	if u == nil {
		u = &apiQuota{}
		u.b.Set(q.rate, q.burst)
		q.users[k] = u
	}
	u.last = now
	q.mu.Unlock()
	return u.b.Take(now)
}
