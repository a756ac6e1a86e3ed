package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Batched direct gets: one request to $JS.API.DIRECT.GET.<stream> ($JS.<domain>.API... with
// Config.Domain) answered by up to Batch
// messages and an end-of-batch status (nats-server 2.11 and later; older servers answer one
// message per request, which still works, slowly). The stream answers them itself, from any
// replica, without creating a consumer: a range of one team's events costs one round trip per
// batch and leaves nothing behind on the server, which matters when many edges replay at once.
// (An ephemeral consumer reads long ranges about twice as fast on a file stream, but costs
// consumer creation and deletion on the stream leader per read.)

const (
	maxBatch      = 256
	maxBatchBytes = 1 << 20

	statusHdr     = "Status"
	descrHdr      = "Description"
	numPendingHdr = "Nats-Num-Pending"
)

// directRequest is the JSON body of a direct get (nats-server's JSApiMsgGetRequest).
type directRequest struct {
	Seq       uint64   `json:"seq,omitempty"`
	NextFor   string   `json:"next_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MaxBytes  int      `json:"max_bytes,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
	UpToSeq   uint64   `json:"up_to_seq,omitempty"`
}

// storedMsg is one message read from the stream.
type storedMsg struct {
	seq  uint64 // stream sequence
	data []byte
}

// directBatch sends one batched direct get and returns the messages in stream order and how
// many messages matching the request the stream holds after them. No message (and pending 0)
// means the stream holds none.
func (b *Bus) directBatch(ctx context.Context, src *source, req directRequest) ([]storedMsg, uint64, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, 0, err
	}
	n := max(req.Batch, 1)
	// Room for every answer and the end-of-batch status: NATS never drops one of ours.
	ch := make(chan *nats.Msg, n+2)
	inbox := b.nc.NewInbox()
	sub, err := b.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.nc.PublishRequest(src.direct, inbox, body); err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	msgs := make([]storedMsg, 0, n)
	for {
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("pubsub: direct get: %w", ctx.Err())
		case m := <-ch:
			if status := m.Header.Get(statusHdr); status != "" && len(m.Data) == 0 {
				switch status {
				case "204": // end of batch
					pending, _ := strconv.ParseUint(m.Header.Get(numPendingHdr), 10, 64)
					return msgs, pending, nil
				case "404": // nothing matches
					return msgs, 0, nil
				case "503":
					return nil, 0, fmt.Errorf("pubsub: direct get: %w", nats.ErrNoResponders)
				default:
					return nil, 0, fmt.Errorf("pubsub: direct get: status %s %s", status, m.Header.Get(descrHdr))
				}
			}
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return nil, 0, errors.New("pubsub: direct get: message without a sequence header")
			}
			msgs = append(msgs, storedMsg{seq: seq, data: m.Data})
			if req.Batch > 0 && m.Header.Get(numPendingHdr) == "" {
				// A server before 2.11 ignores batch and answers one message: carry on with
				// one round trip per message.
				return msgs, 1, nil
			}
		}
	}
}
