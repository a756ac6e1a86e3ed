package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// errNoStream is returned, unretried, by a Bus that does not own the stream and finds none:
// waiting would hide a deployment mistake (no `weft origin` yet, or a wrong NATS).
var errNoStream = fmt.Errorf("pubsub: stream %s does not exist on this NATS; it is created by `weft origin` (or `weft dev`), which must run against the same NATS first", StreamName)

// openStream returns the WEFT_EVENTS stream. An owner (ManageStream) creates it when missing
// and reports or (UpdateStream) fixes differing limits; anyone else only looks it up.
func (b *Bus) openStream(ctx context.Context) (jetstream.Stream, error) {
	cctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	st, err := b.js.Stream(cctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !b.cfg.ManageStream {
			return nil, errNoStream
		}
		st, err = b.js.CreateStream(cctx, b.streamCfg)
		if err == nil {
			b.log.Info("pubsub: created stream", "stream", StreamName, "max_age", b.streamCfg.MaxAge,
				"max_per_subject", b.streamCfg.MaxMsgsPerSubject, "max_bytes", b.streamCfg.MaxBytes,
				"replicas", b.streamCfg.Replicas)
		}
		return st, err
	}
	if err != nil {
		return st, err
	}
	have := st.CachedInfo().Config
	if !b.cfg.ManageStream {
		if !have.AllowDirect {
			// Gap filling, resume and tail checks all read the stream with direct gets: without
			// them every one fails ("no responders") and the edge never catches up.
			b.log.Warn("pubsub: stream "+StreamName+" does not allow direct gets, which weft reads it with: gaps and resumes cannot be filled; enable allow_direct on it, or run its owner once with --stream-update",
				"stream", StreamName)
		}
		return st, nil
	}
	diffs := streamDiffs(have, b.streamCfg)
	if len(diffs) == 0 {
		return st, nil
	}
	if !b.cfg.UpdateStream {
		b.log.Warn("pubsub: stream "+StreamName+" exists with settings other than the flags; keeping the stream's (--stream-update applies the flags)",
			"stream", StreamName, "differences", strings.Join(diffs, "; "))
		return st, nil
	}
	want := have
	want.MaxAge = b.streamCfg.MaxAge
	want.MaxMsgsPerSubject = b.streamCfg.MaxMsgsPerSubject
	want.MaxBytes = b.streamCfg.MaxBytes
	want.Replicas = b.streamCfg.Replicas
	want.Duplicates = b.streamCfg.Duplicates
	want.AllowDirect = true
	st, err = b.js.UpdateStream(cctx, want)
	if err == nil {
		b.log.Warn("pubsub: updated stream "+StreamName+" to the flags (--stream-update)",
			"stream", StreamName, "changed", strings.Join(diffs, "; "))
	}
	return st, err
}

// streamDiffs names each limit the owner sets on which have and want differ, as
// "field: stream's value, flag's value", and direct gets when the stream does not allow them.
func streamDiffs(have, want jetstream.StreamConfig) []string {
	var d []string
	add := func(field string, h, w any) {
		if h != w {
			d = append(d, fmt.Sprintf("%s: stream %v, flag %v", field, h, w))
		}
	}
	add("max-age", have.MaxAge, want.MaxAge)
	add("max-per-subject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	add("max-bytes", have.MaxBytes, want.MaxBytes)
	add("replicas", have.Replicas, want.Replicas)
	add("duplicate-window", have.Duplicates, want.Duplicates)
	if !have.AllowDirect {
		d = append(d, "allow-direct: stream false, weft needs true (it reads the stream with direct gets)")
	}
	return d
}
