package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/origin"
)

func replaySeqs(t *testing.T, b *Bus, team string, after, upto int64) ([]int64, error) {
	t.Helper()
	var seqs []int64
	err := b.Replay(context.Background(), team, after, upto, func(ev *origin.Event) error {
		if ev.Team != team {
			return fmt.Errorf("event of team %s in a replay of %s", ev.Team, team)
		}
		seqs = append(seqs, ev.Seq)
		return nil
	})
	return seqs, err
}

func TestReplayRanges(t *testing.T) {
	_, b := newBus(t, Config{})
	for seq := int64(1); seq <= 30; seq++ { // interleaved teams: stream seqs are not team seqs
		publish(t, b, "TA", seq, seq)
		publish(t, b, "TB", seq, seq)
	}
	cases := []struct {
		after, upto int64
		want        []int64
	}{
		{0, 0, seqRange(1, 30)},
		{10, 20, seqRange(11, 20)},
		{0, 1, []int64{1}},
		{29, 0, []int64{30}},
		{30, 0, nil},
		{40, 0, nil},
		{20, 20, nil},
		{-5, 3, seqRange(1, 3)},
	}
	for _, c := range cases {
		got, err := replaySeqs(t, b, "TA", c.after, c.upto)
		testkit.OK(t, err)
		testkit.Equal(t, got, c.want, fmt.Sprintf("replay (%d, %d]", c.after, c.upto))
	}
	got, err := replaySeqs(t, b, "TNONE", 0, 0)
	testkit.OK(t, err)
	testkit.Equal(t, got, []int64(nil), "replay of a team without events")

	last, err := b.LastSeq(context.Background(), "TB")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(30), "last seq")
	last, err = b.LastSeq(context.Background(), "TNONE")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(0), "last seq of a team without events")

	stop := errors.New("stop")
	var n int
	err = b.Replay(context.Background(), "TA", 0, 0, func(*origin.Event) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	testkit.Equal(t, err, stop, "fn's error")
	testkit.Equal(t, n, 3, "calls before the error")
}

func TestReplayTooOld(t *testing.T) {
	_, b := newBus(t, Config{Stream: StreamConfig{MaxMsgsPerSubject: 10}})
	publish(t, b, "TA", 1, 30) // the stream keeps 21..30
	_, err := replaySeqs(t, b, "TA", 0, 0)
	testkit.IsErr(t, err, ErrTooOld)
	_, err = replaySeqs(t, b, "TA", 19, 25)
	testkit.IsErr(t, err, ErrTooOld)
	got, err := replaySeqs(t, b, "TA", 20, 0)
	testkit.OK(t, err)
	testkit.Equal(t, got, seqRange(21, 30), "what the stream holds")
}

func TestReplayBeyondStored(t *testing.T) {
	_, b := newBus(t, Config{})
	publish(t, b, "TA", 1, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seqs []int64
	err := b.Replay(ctx, "TA", 1, 5, func(ev *origin.Event) error {
		seqs = append(seqs, ev.Seq)
		return nil
	})
	testkit.IsErr(t, err, ErrTooOld) // after waiting a moment for 4 and 5
	testkit.Equal(t, seqs, []int64{2, 3}, "what was there")
}

func TestSeekAmongTeams(t *testing.T) {
	_, b := newBus(t, Config{})
	const teams, perTeam = 5, 40
	// THOLE misses some seqs, repeats one, and publishes in bursts: interpolation guesses wrong.
	holes := map[int64]bool{17: true, 25: true, 26: true, 27: true}
	for seq := int64(1); seq <= perTeam; seq++ {
		for i := range teams {
			publish(t, b, fmt.Sprintf("T%d", i), seq, seq)
		}
		if seq%7 == 0 { // undecodable messages in the middle of the stream
			testkit.OK(t, b.nc.Publish(origin.Subject("T0"), []byte("garbage")))
		}
		if seq == 1 || seq == perTeam {
			for hs := (seq/perTeam)*100 + 1; hs <= (seq/perTeam+1)*100; hs++ {
				if !holes[hs] {
					publish(t, b, "THOLE", hs, hs)
				}
				if hs == 30 {
					data, err := json.Marshal(event("THOLE", 30))
					testkit.OK(t, err)
					testkit.OK(t, b.nc.Publish(origin.Subject("THOLE"), data))
				}
			}
		}
	}
	testkit.OK(t, b.nc.Publish(origin.Subject("T0"), []byte("garbage at the end")))
	testkit.OK(t, b.nc.Publish(origin.Subject("T0"), []byte("more garbage at the end")))
	testkit.OK(t, b.nc.Flush())
	testkit.Eventually(t, func() bool {
		m, err := b.stream.GetLastMsgForSubject(context.Background(), origin.Subject("T0"))
		return err == nil && string(m.Data) == "more garbage at the end"
	}, "the garbage to be stored")

	ctx := context.Background()
	for i := range teams {
		team := fmt.Sprintf("T%d", i)
		for want := int64(1); want <= perTeam; want++ {
			_, ev, _, err := b.seek(ctx, b.src, team, want, nil, true)
			testkit.OK(t, err)
			testkit.Equal(t, ev.Seq, want, "seek "+team)
		}
		_, _, _, err := b.seek(ctx, b.src, team, perTeam+1, nil, true)
		testkit.IsErr(t, err, errNotStored)
	}
	for want := int64(1); want <= 200; want++ {
		expect := want
		for holes[expect] {
			expect++
		}
		_, ev, _, err := b.seek(ctx, b.src, "THOLE", want, nil, true)
		testkit.OK(t, err)
		testkit.Equal(t, ev.Seq, expect, fmt.Sprintf("seek THOLE %d", want))
	}
	last, err := b.LastSeq(ctx, "T0")
	testkit.OK(t, err)
	testkit.Equal(t, last, int64(perTeam), "last seq behind garbage")

	// With a hint, as gap filling uses it.
	ts := &teamState{}
	for want := int64(1); want <= perTeam; want++ {
		at, ev, _, err := b.seek(ctx, b.src, "T3", want, ts, false)
		testkit.OK(t, err)
		testkit.Equal(t, ev.Seq, want, "seek with hint")
		ts.clearHint()
		ts.putHint(want, at) // where the next seek starts from
	}
	// A replay across the holes reports the first one.
	_, err = replaySeqs(t, b, "THOLE", 10, 0)
	testkit.IsErr(t, err, ErrTooOld)
	got, err := replaySeqs(t, b, "THOLE", 27, 35)
	testkit.OK(t, err)
	testkit.Equal(t, got, seqRange(28, 35), "replay past the holes, over a repeated seq")
}

// TestSeekRandomized checks seek against a model on random interleavings of teams with random
// holes, repeated seqs and garbage.
func TestSeekRandomized(t *testing.T) {
	_, b := newBus(t, Config{Stream: StreamConfig{Memory: true, MaxMsgsPerSubject: -1}})
	rng := rand.New(rand.NewPCG(1, 2))
	const teams = 4
	stored := make([][]int64, teams) // team seqs in stream order
	next := make([]int64, teams)
	var published uint64
	for range 1200 {
		i := rng.IntN(teams)
		subj := origin.Subject(fmt.Sprintf("R%d", i))
		switch r := rng.IntN(100); {
		case r < 3:
			testkit.OK(t, b.nc.Publish(subj, []byte("garbage")))
		case r < 6 && next[i] > 0: // repeat the last seq
			data, err := json.Marshal(event(fmt.Sprintf("R%d", i), next[i]))
			testkit.OK(t, err)
			testkit.OK(t, b.nc.Publish(subj, data))
			stored[i] = append(stored[i], next[i])
		default:
			next[i] += 1 + int64(rng.IntN(100)/90) // a hole now and then
			data, err := json.Marshal(event(fmt.Sprintf("R%d", i), next[i]))
			testkit.OK(t, err)
			testkit.OK(t, b.nc.Publish(subj, data))
			stored[i] = append(stored[i], next[i])
		}
		published++
	}
	testkit.OK(t, b.nc.Flush())
	testkit.Eventually(t, func() bool {
		info, err := b.stream.Info(context.Background())
		return err == nil && info.State.Msgs == published
	}, "everything stored")

	ctx := context.Background()
	for i := range teams {
		team := fmt.Sprintf("R%d", i)
		for want := int64(1); want <= next[i]+1; want++ {
			expect := int64(-1)
			for _, s := range stored[i] {
				if s >= want {
					expect = s
					break
				}
			}
			_, ev, _, err := b.seek(ctx, b.src, team, want, nil, true)
			if expect < 0 {
				testkit.IsErr(t, err, errNotStored)
				continue
			}
			testkit.OK(t, err)
			testkit.Equal(t, ev.Seq, expect, fmt.Sprintf("seek %s %d", team, want))
		}
	}
}
