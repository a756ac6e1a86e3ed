package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/sleep"
)

// Regional mirrors (docs/architecture.md, "Regions"). In each edge region, NATS leaf nodes
// with a JetStream domain of their own hold a mirror of the home region's WEFT_EVENTS, under
// the same name: an edge connected to its region's leaf node reads "WEFT_EVENTS" from its own
// JetStream and so replays and fills gaps without crossing the WAN, with no setting of its own.
//
// The stream's owner (the origin side, which runs in the home region) keeps them: for each
// domain of StreamConfig.Mirrors it creates the mirror when missing, through that domain's
// API prefix ($JS.<region>.API, routed over the region's leaf node connection), as a mirror of
// the stream in the owner's own domain ($JS.<hub>.API, which the region's servers reach back
// through the same connection). A region whose leaf nodes are unreachable does not hold the
// owner up: each mirror is kept by a goroutine of its own that retries until it has made or
// found the mirror, then ends. One owner for every copy, as for the stream of record: the
// operator's settings survive restarts of everything else, and edges never create streams.

// mirrorOf says what stream cfg mirrors ("" when it is no mirror), for logs.
func mirrorOf(cfg jetstream.StreamConfig) string {
	m := cfg.Mirror
	if m == nil {
		return ""
	}
	if m.External != nil && m.External.APIPrefix != "" {
		return m.Name + " via " + m.External.APIPrefix
	}
	return m.Name
}

// mirrorConfig is the config of a mirror of the stream in domain hub, with s's limits.
func (s StreamConfig) mirrorConfig(hub string) (jetstream.StreamConfig, error) {
	base, err := s.jetstream()
	if err != nil {
		return base, err
	}
	replicas := s.MirrorReplicas
	if replicas == 0 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "weft team events: a mirror of " + StreamName + " in JetStream domain " + hub,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgs:           -1,
		MaxBytes:          base.MaxBytes,
		MaxAge:            base.MaxAge,
		MaxMsgsPerSubject: base.MaxMsgsPerSubject,
		Storage:           base.Storage,
		Replicas:          replicas,
		// The region's edges read it with direct gets, answered by the mirror itself.
		AllowDirect: true,
		Mirror: &jetstream.StreamSource{Name: StreamName,
			External: &jetstream.ExternalStream{APIPrefix: apiPrefix(hub)}},
	}, nil
}

// errNoHubDomain: a mirror in another domain reaches the stream through its domain's prefix.
var errNoHubDomain = errors.New("pubsub: Stream.Mirrors needs the JetStream of the stream of record to have a domain " +
	"(jetstream { domain: hub } in its servers' config, or Config.Domain): a region's mirror reaches the stream through it")

// startMirrors starts keeping a mirror in each domain of Stream.Mirrors. It fails only when
// the owner's domain cannot be known.
func (b *Bus) startMirrors(ctx context.Context) error {
	if len(b.cfg.Stream.Mirrors) == 0 {
		return nil
	}
	hub := b.cfg.Domain
	if hub == "" {
		var info *jetstream.AccountInfo
		for attempt := 0; ; attempt++ {
			cctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
			var err error
			info, err = b.js.AccountInfo(cctx)
			cancel()
			if err == nil {
				break
			}
			b.log.Warn("pubsub: asking JetStream its domain", "attempt", attempt+1, "err", err)
			if werr := sleep.For(ctx, backoff(attempt)); werr != nil {
				return fmt.Errorf("pubsub: asking JetStream its domain: %w (last error: %v)", werr, err)
			}
		}
		hub = info.Domain
	}
	if hub == "" {
		return errNoHubDomain
	}
	want, err := b.cfg.Stream.mirrorConfig(hub)
	if err != nil {
		return err
	}
	for _, domain := range b.cfg.Stream.Mirrors {
		js, err := jetstream.NewWithDomain(b.nc, domain, jetstream.WithDefaultTimeout(b.cfg.RequestTimeout))
		if err != nil {
			return fmt.Errorf("pubsub: mirror in domain %s: %w", domain, err)
		}
		b.wg.Add(1)
		go b.keepMirror(js, domain, want)
	}
	return nil
}

// keepMirror makes sure the mirror exists in domain, retrying until it does or the Bus closes.
func (b *Bus) keepMirror(js jetstream.JetStream, domain string, want jetstream.StreamConfig) {
	defer b.wg.Done()
	log := b.log.With("domain", domain, "stream", StreamName)
	for attempt := 0; ; attempt++ {
		err := b.ensureMirror(js, log, want)
		if err == nil || b.ctx.Err() != nil {
			return
		}
		level := slog.LevelDebug
		if attempt == 0 || attempt%20 == 19 {
			// A region whose leaf nodes are not connected (yet) answers "no responders".
			level = slog.LevelWarn
		}
		log.Log(b.ctx, level, "pubsub: the region's mirror of the stream is not set up yet, will retry", "attempt", attempt+1, "err", err)
		if sleep.For(b.ctx, backoff(attempt)) != nil {
			return
		}
	}
}

// ensureMirror creates the mirror when missing, and reports (or, with UpdateStream, updates)
// limits of an existing one that differ. A stream of that name that is not a mirror of this
// stream is the operator's: it is named in a warning and left alone.
func (b *Bus) ensureMirror(js jetstream.JetStream, log *slog.Logger, want jetstream.StreamConfig) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.RequestTimeout)
	defer cancel()
	st, err := js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return err
		}
		log.Info("pubsub: created the region's mirror of the stream", "mirror_of", mirrorOf(want),
			"max_age", want.MaxAge, "replicas", want.Replicas)
		return nil
	}
	if err != nil {
		return err
	}
	have := st.CachedInfo().Config
	if mirrorOf(have) != mirrorOf(want) {
		log.Warn("pubsub: the region's "+StreamName+" is not a mirror of this stream; leaving it as it is (the region's edges read it)",
			"mirror_of", mirrorOf(have), "want", mirrorOf(want), "subjects", strings.Join(have.Subjects, ","))
		return nil
	}
	diffs := streamDiffs(have, want)
	if len(diffs) == 0 {
		return nil
	}
	if !b.cfg.UpdateStream {
		log.Warn("pubsub: the region's mirror exists with settings other than the flags; keeping the mirror's (--stream-update applies the flags)",
			"differences", strings.Join(diffs, "; "))
		return nil
	}
	upd := have
	upd.MaxAge, upd.MaxMsgsPerSubject, upd.MaxBytes = want.MaxAge, want.MaxMsgsPerSubject, want.MaxBytes
	upd.Replicas, upd.AllowDirect = want.Replicas, true
	if _, err := js.UpdateStream(ctx, upd); err != nil {
		return err
	}
	log.Warn("pubsub: updated the region's mirror to the flags (--stream-update)", "changed", strings.Join(diffs, "; "))
	return nil
}
