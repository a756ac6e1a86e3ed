package reference

import (
	"math/bits"
	"math/rand/v2"
)

// Everything in the world is a pure function of (seed, kind, team index, object index): each
// object seeds its own PCG stream, so any one object is generated in isolation, in any order,
// on any goroutine, and nothing needs to be stored.

// Kinds of generated things; each has its own streams.
const (
	kindTeam uint64 = iota + 1
	kindUser
	kindChannel
	kindMembers
	kindUserNames
	kindChannelNames
	kindTeamNames
	kindBots
)

// mix64 is the splitmix64 finalizer: a cheap bijective hash with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// streamKey derives the two PCG seed words of one object's stream.
func streamKey(seed int64, kind, team, idx uint64) (uint64, uint64) {
	h := mix64(uint64(seed) ^ mix64(kind*0x9e3779b97f4a7c15))
	h = mix64(h ^ team)
	return h, mix64(h ^ mix64(idx+0x632be59bd9b4e019))
}

// prng is a PCG stream by value: generating an object allocates no generator.
type prng struct{ src rand.PCG }

func newPRNG(seed int64, kind uint64, team, idx int) prng {
	var p prng
	p.src.Seed(streamKey(seed, kind, uint64(team), uint64(idx)))
	return p
}

func (p *prng) u64() uint64 { return p.src.Uint64() }

// intn returns a value in [0, n) (Lemire's multiply-shift; the bias is far below what matters).
func (p *prng) intn(n int) int {
	hi, _ := bits.Mul64(p.src.Uint64(), uint64(n))
	return int(hi)
}

func (p *prng) float64() float64 { return float64(p.src.Uint64()>>11) / (1 << 53) }

func (p *prng) chance(prob float64) bool { return p.float64() < prob }

func pick[T any](p *prng, list []T) T { return list[p.intn(len(list))] }

// perm is a seeded bijection of [0, n): a 4-round Feistel network on the smallest even number
// of bits that covers n, cycle-walked back into range. It lets index i take "the i-th distinct
// name" in a shuffled order without a table, which is how handles and channel names stay
// unique per team at any size.
type perm struct {
	n    uint64
	half uint
	mask uint64
	keys [4]uint64
}

func newPerm(n uint64, seed int64, kind uint64, team, round int) perm {
	p := perm{n: n, half: 1}
	for uint64(1)<<(2*p.half) < n {
		p.half++
	}
	p.mask = 1<<p.half - 1
	a, b := streamKey(seed, kind, uint64(team), uint64(round))
	for i := range p.keys {
		a = mix64(a ^ b + uint64(i))
		p.keys[i] = a
	}
	return p
}

func (p *perm) at(x uint64) uint64 {
	for {
		l, r := x>>p.half, x&p.mask
		for _, k := range p.keys {
			l, r = r, l^(mix64(r^k)&p.mask)
		}
		x = l<<p.half | r
		if x < p.n {
			return x
		}
	}
}
