package reference

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-edge/weft/origin"
)

// World is the synthetic base state of every team: users, channels and memberships generated
// on demand from (seed, team index, object index). It stores only each channel's base member
// count, so a 366,000-user team costs kilobytes, not gigabytes. A World never changes after
// NewWorld and is safe for concurrent use; the changes made since start live in the Server.
type World struct {
	seed int64
	size Size
	// extraMean is the mean of the exponential draw of a user's channels besides #general,
	// solved so that the capped, rounded draw averages Size.ChannelsPerUser-1 (see extraMeanFor).
	extraMean float64
	teams     []teamBase
	gens      sync.Pool // *memberGen
}

type teamBase struct {
	id      string
	created int64   // unix seconds; the team's channels are created after it
	counts  []int32 // base member count of each base channel
	members int64   // base memberships in the team
}

// Zipf parameters of channel popularity: P(rank k) ∝ (v+k)^-s. With s=1.1 the most popular
// channels reach most users while the long tail has a handful of members each.
const (
	zipfS = 1.1
	zipfV = 1.5
)

// Deterministic dates: teams start between 2014 and 2022, base channels before worldEpoch.
var (
	teamsFrom  = time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	worldEpoch = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
)

const (
	botEvery      = 67   // one user in 67 is a bot: ~1.5%
	deletedShare  = 0.03 // deactivated users
	privateShare  = 0.10
	archivedShare = 0.05
	popularRanks  = 20 // the most popular channels are never private
)

// NewWorld generates the world of seed and size. It walks every user's channel list once to
// count members, on all cores: about a second for giant.
func NewWorld(seed int64, size Size) (*World, error) {
	if err := size.Validate(); err != nil {
		return nil, err
	}
	w := &World{seed: seed, size: size, extraMean: extraMeanFor(size)}
	w.gens.New = func() any { return w.newMemberGen() }
	w.teams = make([]teamBase, size.Teams)
	for t := range w.teams {
		r := newPRNG(seed, kindTeam, t, 1)
		w.teams[t] = teamBase{id: teamID(t), created: teamsFrom + int64(r.intn(8*365*86400)),
			counts: make([]int32, size.Channels)}
	}
	w.countMembers()
	return w, nil
}

// countMembers fills the base member counts. Workers take chunks of users and count into
// their own arrays, merged at the end, so hot channels are not contended.
func (w *World) countMembers() {
	const chunk = 4096
	perTeam := (w.size.Users + chunk - 1) / chunk
	total := perTeam * w.size.Teams
	workers := min(runtime.GOMAXPROCS(0), total)
	var next atomic.Int64
	partial := make([][]int32, workers)
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Go(func() {
			counts := make([]int32, w.size.Teams*w.size.Channels)
			g := w.getGen()
			defer w.gens.Put(g)
			var list []int32
			for {
				item := int(next.Add(1) - 1)
				if item >= total {
					break
				}
				t, from := item/perTeam, item%perTeam*chunk
				base := counts[t*w.size.Channels:]
				for u := from; u < min(from+chunk, w.size.Users); u++ {
					list = w.baseChannelsInto(g, t, u, list)
					for _, c := range list {
						base[c]++
					}
				}
			}
			partial[wk] = counts
		})
	}
	wg.Wait()
	for t := range w.teams {
		tb := &w.teams[t]
		for _, counts := range partial {
			for c, n := range counts[t*w.size.Channels : (t+1)*w.size.Channels] {
				tb.counts[c] += n
			}
		}
		for _, n := range tb.counts {
			tb.members += int64(n)
		}
	}
}

// extraMeanFor solves for the exponential mean m such that E[min(round(m·X), c)] equals the
// wanted number of channels besides #general, X ~ Exp(1) and c the other channels. That mean
// is Σ_{n=1..c} e^{-(n-½)/m}, increasing in m, so bisection finds it.
func extraMeanFor(s Size) float64 {
	want, c := s.ChannelsPerUser-1, float64(s.Channels-1)
	if want <= 0 {
		return 0
	}
	if want >= c {
		return math.Inf(1)
	}
	mean := func(m float64) float64 {
		q := math.Exp(-1 / m)
		return math.Exp(0.5/m) * q * (1 - math.Pow(q, c)) / (1 - q)
	}
	lo, hi := 1e-6, want+1
	for mean(hi) < want {
		hi *= 2
	}
	for range 100 {
		mid := (lo + hi) / 2
		if mean(mid) < want {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// memberGen draws channel lists. It is reseeded per user; pooled because a Zipf is not free
// to build and not safe to share.
type memberGen struct {
	src  rand.PCG
	r    *rand.Rand
	zipf *rand.Zipf
	base []int32  // scratch: a user's base channels
	rows []memRow // scratch: a user's current memberships
}

func (w *World) newMemberGen() *memberGen {
	g := new(memberGen)
	g.r = rand.New(&g.src)
	if w.size.Channels > 2 {
		g.zipf = rand.NewZipf(g.r, zipfS, zipfV, uint64(w.size.Channels-2))
	}
	return g
}

func (w *World) getGen() *memberGen { return w.gens.Get().(*memberGen) }

// baseChannelsInto writes the base channel indices of user u of team t into dst, ascending:
// #general, then a Zipf-skewed draw of distinct other channels (channel index i has popularity
// rank i-1). A duplicate draw is redrawn a few times, then moved to the next free channel, so
// a user always gets exactly the number of channels drawn for them.
func (w *World) baseChannelsInto(g *memberGen, t, u int, dst []int32) []int32 {
	dst = append(dst[:0], 0)
	others := w.size.Channels - 1
	g.src.Seed(streamKey(w.seed, kindMembers, uint64(t), uint64(u)))
	k := others
	if !math.IsInf(w.extraMean, 1) {
		k = min(int(math.Round(g.r.ExpFloat64()*w.extraMean)), others)
	}
	if k == others { // every channel: no need to draw
		for c := 1; c <= others; c++ {
			dst = append(dst, int32(c))
		}
		return dst
	}
	for range k {
		c := int32(1 + g.zipf.Uint64())
		for try := 0; slices.Contains(dst, c); try++ {
			if try < 3 {
				c = int32(1 + g.zipf.Uint64())
			} else {
				c = c%int32(others) + 1
			}
		}
		dst = append(dst, c)
	}
	slices.Sort(dst)
	return dst
}

// botOrdinal says whether user u of team t is a bot, and which: every botEvery-th index from a
// seeded offset. Spacing bots evenly gives each its ordinal without counting, which is what
// keeps bot handles unique.
func (w *World) botOrdinal(t, u int) (int, bool) {
	if u == 0 {
		return 0, false // the owner is a person
	}
	off := int(mix64(uint64(w.seed)^kindBots^uint64(t)<<20) % botEvery)
	if (u+off)%botEvery != 0 {
		return 0, false
	}
	return (u + off) / botEvery, true
}

// baseUser generates user u of team t. Handles are unique per team without a map: within each
// round of totalPairs users a seeded bijection gives every user a distinct (culture, given,
// family) pair, whose handles are distinct by construction of the name lists; later rounds add
// the round number ("jose.nunez2").
func (w *World) baseUser(t, u int) origin.User {
	id := userID(t, u)
	r := newPRNG(w.seed, kindUser, t, u)
	user := origin.User{ID: id, Team: w.teams[t].id, Updated: 1}
	if ord, ok := w.botOrdinal(t, u); ok {
		round := ord / len(botNames)
		p := newPerm(uint64(len(botNames)), w.seed, kindBots, t, round)
		name := botNames[p.at(uint64(ord%len(botNames)))]
		user.Name = name + roundSuffix("-", round)
		user.RealName = titleCase(name)
		user.Title = pick(&r, botTitles)
		user.TZ = "UTC"
		user.IsBot = true
	} else {
		round := u / totalPairs
		p := newPerm(uint64(totalPairs), w.seed, kindUserNames, t, round)
		c, given, family := personName(int(p.at(uint64(u % totalPairs))))
		user.Name = given.fold + "." + family.fold + roundSuffix("", round)
		if c.familyFirst {
			user.RealName = family.text + " " + given.text
		} else {
			user.RealName = given.text + " " + family.text
		}
		called := given.text[strings.LastIndexByte(given.text, ' ')+1:]
		switch roll := r.float64(); {
		case roll < 0.45:
			user.DisplayName = called
		case roll < 0.60:
			user.DisplayName = pick(&r, nickNames)
		case roll < 0.70:
			first, _ := firstRune(family.text)
			user.DisplayName = called + " " + first + "."
		}
		if r.chance(0.75) {
			user.Title = pick(&r, jobTitles)
		}
		user.TZ = pick(&r, c.tz)
		if u == 0 {
			user.Title = "Founder & CEO"
		}
	}
	avatar := appendHex32([]byte("https://avatars.example.com/"+id+"/"), uint32(r.u64()))
	user.AvatarURL = string(append(avatar, "_192.png"...))
	user.Deleted = u != 0 && r.chance(deletedShare)
	return user
}

// personName maps a pair index to its culture and names.
func personName(p int) (*culture, nameEntry, nameEntry) {
	for i := range cultures {
		c := &cultures[i]
		if p < c.pairs {
			return c, c.given[p%len(c.given)], c.family[p/len(c.given)]
		}
		p -= c.pairs
	}
	panic("origin: name pair out of range")
}

func appendHex32(b []byte, v uint32) []byte {
	const hex = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, hex[v>>uint(shift)&0xf])
	}
	return b
}

func roundSuffix(sep string, round int) string {
	if round == 0 {
		return ""
	}
	return sep + strconv.Itoa(round+1)
}

func firstRune(s string) (string, int) {
	for i := range s {
		if i > 0 {
			return s[:i], i
		}
	}
	return s, len(s)
}

// titleCase turns "deploy-bot" into "Deploy Bot".
func titleCase(s string) string {
	words := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// baseChannel generates channel c of team t. Names are unique per team the same way handles
// are: a seeded bijection over the channel name families per round, a "-<round>" suffix after.
func (w *World) baseChannel(t, c int) origin.Channel {
	tb := &w.teams[t]
	r := newPRNG(w.seed, kindChannel, t, c)
	ch := origin.Channel{ID: channelID(t, c), Team: tb.id, Creator: userID(t, 0), MemberCount: int(tb.counts[c]), Updated: 1}
	created := tb.created
	switch c {
	case 0:
		ch.Name = "general"
		ch.Purpose = "This channel is for workspace-wide communication and announcements. All members are in this channel."
		ch.Topic = "Company-wide announcements and work-based matters"
	case 1:
		ch.Name = "random"
		ch.Purpose = "A place for non-work banter, links, articles of interest, humor and anything else you'd like to keep out of work channels."
		ch.Topic = "Non-work banter and water cooler conversation"
	default:
		j := c - 2
		round := j / channelNameCount
		p := newPerm(uint64(channelNameCount), w.seed, kindChannelNames, t, round)
		name, purpose := channelName(int(p.at(uint64(j % channelNameCount))))
		ch.Name, ch.Purpose = name+roundSuffix("-", round), purpose
		if r.chance(0.6) {
			ch.Topic = pick(&r, channelTopics)
		}
		created += int64(r.intn(int(worldEpoch - tb.created)))
		ch.Creator = userID(t, r.intn(w.size.Users))
		ch.IsPrivate = c > popularRanks+1 && r.chance(privateShare)
		ch.IsArchived = r.chance(archivedShare)
	}
	ch.Created = time.Unix(created, 0).UTC().Format(time.RFC3339)
	return ch
}

// baseTeam generates team t. Team names are unique per world like handles.
func (w *World) baseTeam(t int) origin.Team {
	pairs := len(teamAdjectives) * len(teamNouns)
	round := t / pairs
	p := newPerm(uint64(pairs), w.seed, kindTeamNames, 0, round)
	i := int(p.at(uint64(t % pairs)))
	adj, noun := teamAdjectives[i%len(teamAdjectives)], teamNouns[i/len(teamAdjectives)]
	r := newPRNG(w.seed, kindTeam, t, 0)
	name := adj + " " + noun
	if kind := pick(&r, teamKinds); kind != "" {
		name += " " + kind
	}
	return origin.Team{ID: w.teams[t].id, Name: name,
		Domain:    strings.ToLower(adj+noun) + roundSuffix("", round),
		UserCount: w.size.Users, ChannelCount: w.size.Channels, Updated: 1}
}

// Seed returns the seed the world was generated from.
func (w *World) Seed() int64 { return w.seed }

// Size returns the size the world was generated with.
func (w *World) Size() Size { return w.size }

// TeamIDs returns the IDs of the world's teams in index order.
func (w *World) TeamIDs() []string {
	ids := make([]string, len(w.teams))
	for i := range w.teams {
		ids[i] = w.teams[i].id
	}
	return ids
}

// MembershipCount returns the number of base memberships of a team, for sizing reports.
func (w *World) MembershipCount(team string) int64 {
	t, ok := w.teamIndex(team)
	if !ok {
		return 0
	}
	return w.teams[t].members
}

func (w *World) teamIndex(id string) (int, bool) {
	t, ok := parseTeamID(id)
	return t, ok && t < len(w.teams)
}

// User returns the base (start-of-world) state of a user; the Server has the current one.
func (w *World) User(id string) (origin.User, bool) {
	t, u, ok := parseObjectID('U', id)
	if !ok || t >= len(w.teams) || u >= w.size.Users {
		return origin.User{}, false
	}
	return w.baseUser(t, u), true
}

// Channel returns the base state of a channel; the Server has the current one.
func (w *World) Channel(id string) (origin.Channel, bool) {
	t, c, ok := parseObjectID('C', id)
	if !ok || t >= len(w.teams) || c >= w.size.Channels {
		return origin.Channel{}, false
	}
	return w.baseChannel(t, c), true
}

// ChannelsOf returns the IDs of the channels user (of team) is a member of in the base state,
// in channel order, or nil for a user the world does not have; the Server has the current ones.
// It draws them as a Server does, without one: a walk of every membership of a big world (the
// origin on PostgreSQL seeds its tables with it) needs no server's state.
func (w *World) ChannelsOf(team, user string) []string {
	t, u, ok := parseObjectID('U', user)
	if tt, tok := w.teamIndex(team); !ok || !tok || tt != t || u >= w.size.Users {
		return nil
	}
	g := w.getGen()
	defer w.gens.Put(g)
	g.base = w.baseChannelsInto(g, t, u, g.base)
	ids := make([]string, len(g.base))
	for i, c := range g.base {
		ids[i] = channelID(t, int(c))
	}
	return ids
}

// Team returns the base state of a team; the Server has the current one.
func (w *World) Team(id string) (origin.Team, bool) {
	t, ok := w.teamIndex(id)
	if !ok {
		return origin.Team{}, false
	}
	return w.baseTeam(t), true
}
