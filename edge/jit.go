package edge

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math/bits"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/weft-edge/weft/cache"
	"github.com/weft-edge/weft/origin"
)

// Just-in-time annotations (docs/protocol.md section 6). Each session keeps a bounded record of the
// objects, with their versions, it recently sent its client: in replies (boot, users.info,
// users.list, channels.info), in events that carry them (user_change, channel_created,
// channel_change) and in earlier annotations. An event that names an object the record lacks,
// or holds at an older version, gets the current object attached; otherwise nothing.
//
// Fan-out stays encode-once: the event's frame is encoded once, each named object once, and
// each distinct set of attached objects once per event (most recipients of a message lack the
// same sender or nothing at all); a session's frame is one of those shared byte slices.
//
// The record is a simplelru (not the package's locked Cache, and not its expirable one, which
// leaves a goroutine behind per cache) guarded by the session's own mutex, which the fan-out
// holds anyway to queue the frame. It is made on first use, so an idle session costs nothing.

// AnnotateMode chooses what the edge attaches to events. The modes other than AnnotateJIT exist
// to measure it against: they are the two baselines of the annotation benchmarks.
type AnnotateMode int

const (
	AnnotateJIT    AnnotateMode = iota // attach what the session has not recently seen (default)
	AnnotateNever                      // attach nothing: clients ask for what they lack
	AnnotateAlways                     // attach every named object to every event
)

var annotateNames = [...]string{AnnotateJIT: "jit", AnnotateNever: "never", AnnotateAlways: "always"}

func (m AnnotateMode) String() string {
	if int(m) < len(annotateNames) {
		return annotateNames[m]
	}
	return fmt.Sprintf("AnnotateMode(%d)", int(m))
}

// ParseAnnotateMode reads "jit", "never" or "always".
func ParseAnnotateMode(s string) (AnnotateMode, error) {
	for m, name := range annotateNames {
		if s == name {
			return AnnotateMode(m), nil
		}
	}
	return 0, fmt.Errorf("edge: annotate mode %q: want jit, never or always", s)
}

type jitKey struct {
	kind byte // 'u' or 'c'
	id   string
}

// jitRecord maps an object's key hash to the version sent. Hashes, not jitKeys, because the
// record is the per-session cost of annotations: a 64-bit key makes an entry 116 bytes instead
// of 176 (BenchmarkJITRecordMemory). Two objects of a team colliding is a ~1e-9 event, and
// its worst case is one object not attached, which the client then asks for.
type jitRecord = simplelru.LRU[uint64, int64]

var jitSeed = maphash.MakeSeed()

func (k jitKey) hash() uint64 {
	var h maphash.Hash
	h.SetSeed(jitSeed)
	h.WriteByte(k.kind)
	h.WriteString(k.id)
	return h.Sum64()
}

// maxNamed bounds the objects one event may name (a message's sender, its channel and its
// mentions): the attached set is a bit mask. Mentions beyond it are not annotated.
const maxNamed = 64

type jitObj struct {
	key  jitKey
	ver  int64
	user origin.User
	ch   origin.Channel
	raw  []byte // the object's JSON, encoded on first need
}

// annotator is one event's annotation material, shared by all its recipients. It is used by
// one goroutine at a time: the team's feed goroutine, or one resuming session's replay.
type annotator struct {
	mode    AnnotateMode
	named   []jitObj // named by the event and not carried by it, found in the store
	carried []jitObj // carried by the event: its recipients have them from now on
	base    []byte   // the frame without annotations
	frames  map[uint64][]byte
}

func newAnnotator(st *cache.Store, ev *origin.Event, base []byte, mode AnnotateMode) *annotator {
	a := &annotator{mode: mode, base: base}
	if mode == AnnotateNever {
		return a
	}
	user := func(id string) {
		if id == "" || len(a.named) == maxNamed {
			return
		}
		for _, o := range a.named {
			if o.key.kind == 'u' && o.key.id == id {
				return
			}
		}
		if u, ok := st.User(id); ok {
			a.named = append(a.named, jitObj{key: jitKey{'u', u.ID}, ver: u.Updated, user: u})
		}
	}
	channel := func(id string) {
		if id == "" || len(a.named) == maxNamed {
			return
		}
		if c, ok := st.Channel(id, ""); ok {
			a.named = append(a.named, jitObj{key: jitKey{'c', c.ID}, ver: c.Updated, ch: c})
		}
	}
	switch ev.Type {
	case origin.EventMessage:
		user(ev.UserID)
		channel(ev.ChannelID)
		for _, m := range ev.Mentions {
			user(m)
		}
	case origin.EventMemberJoined, origin.EventMemberLeft:
		user(ev.UserID)
		channel(ev.ChannelID)
	case origin.EventUserChange:
		if ev.User != nil {
			a.carried = append(a.carried, jitObj{key: jitKey{'u', ev.User.ID}, ver: ev.User.Updated})
		}
	case origin.EventChannelCreated, origin.EventChannelChange:
		if ev.Channel != nil {
			a.carried = append(a.carried, jitObj{key: jitKey{'c', ev.Channel.ID}, ver: ev.Channel.Updated})
		}
	}
	return a
}

// frameFor returns the frame for session s and records what s was sent. Caller holds s.mu.
func (a *annotator) frameFor(s *session) []byte {
	if a.mode == AnnotateNever || len(a.named)+len(a.carried) == 0 {
		return a.base
	}
	if a.mode == AnnotateAlways {
		return a.frame(1<<len(a.named) - 1)
	}
	rec := s.record()
	var mask uint64
	for i := range a.named {
		o := &a.named[i]
		if v, ok := rec.Get(o.key.hash()); ok && v >= o.ver {
			continue
		}
		mask |= 1 << i
		rec.Add(o.key.hash(), o.ver)
	}
	for _, o := range a.carried {
		if v, ok := rec.Peek(o.key.hash()); !ok || v < o.ver {
			rec.Add(o.key.hash(), o.ver)
		}
	}
	return a.frame(mask)
}

// replayFrame is the frame of a replayed event for s. Replayed events go on the wire ahead of
// live ones the fan-out may already have queued (and recorded objects for), so a replayed
// event cannot trust the record: it carries every object it names, and records them.
func (s *session) replayFrame(a *annotator) []byte {
	if a.mode != AnnotateJIT {
		return a.frameFor(s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.record()
	for _, o := range append(a.named, a.carried...) {
		if v, ok := rec.Peek(o.key.hash()); !ok || v < o.ver {
			rec.Add(o.key.hash(), o.ver)
		}
	}
	return a.frame(1<<len(a.named) - 1)
}

// frame returns the frame with the named objects of mask attached, building it once per mask.
func (a *annotator) frame(mask uint64) []byte {
	if mask == 0 {
		return a.base
	}
	if f, ok := a.frames[mask]; ok {
		return f
	}
	b := make([]byte, 0, len(a.base)+256*bits.OnesCount64(mask))
	b = append(b, a.base[:len(a.base)-1]...) // the frame's closing brace comes last
	b = append(b, `,"annotations":{"users":{`...)
	b = a.appendKind(b, mask, 'u')
	b = append(b, `},"channels":{`...)
	b = a.appendKind(b, mask, 'c')
	b = append(b, "}}}"...)
	if a.frames == nil {
		a.frames = make(map[uint64][]byte)
	}
	a.frames[mask] = b
	return b
}

func (a *annotator) appendKind(b []byte, mask uint64, kind byte) []byte {
	first := true
	for i := range a.named {
		o := &a.named[i]
		if mask&(1<<i) == 0 || o.key.kind != kind {
			continue
		}
		if o.raw == nil {
			var err error
			if kind == 'u' {
				o.raw, err = json.Marshal(&o.user)
			} else {
				o.raw, err = json.Marshal(&o.ch)
			}
			if err != nil {
				o.raw = []byte("null")
			}
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		id, _ := json.Marshal(o.key.id)
		b = append(b, id...)
		b = append(b, ':')
		b = append(b, o.raw...)
	}
	return b
}

// record returns the session's record, making it on first use. Caller holds s.mu.
func (s *session) record() *jitRecord {
	if s.seen == nil {
		s.seen, _ = simplelru.NewLRU[uint64, int64](s.srv.cfg.JITObjects, nil)
	}
	return s.seen
}

// rememberLocked records objects a reply sends the client. Called by reply with s.mu held,
// as it queues the reply: an event skipping them is never ahead of them on the wire, and an
// event queued after the reply never attaches them again. Caller holds s.mu.
func (s *session) rememberLocked(result any) {
	if s.srv.cfg.Annotate != AnnotateJIT {
		return
	}
	var users []origin.User
	var chans []origin.Channel
	switch r := result.(type) {
	case bootResult:
		users, chans = []origin.User{r.Self}, r.Channels
	case usersInfoResult:
		users = r.Users
	case usersListResult:
		users = r.Users
	case channelsInfoResult:
		chans = r.Channels
	default:
		return
	}
	rec := s.record()
	for i := range users {
		if v, ok := rec.Peek(jitKey{'u', users[i].ID}.hash()); !ok || v < users[i].Updated {
			rec.Add(jitKey{'u', users[i].ID}.hash(), users[i].Updated)
		}
	}
	for i := range chans {
		if v, ok := rec.Peek(jitKey{'c', chans[i].ID}.hash()); !ok || v < chans[i].Updated {
			rec.Add(jitKey{'c', chans[i].ID}.hash(), chans[i].Updated)
		}
	}
}
