package edge

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// FuzzReadMessage: whatever bytes a client sends, the read side returns messages within its
// bounds (at most keep bytes kept, over set past it, never past limit read), answers only
// pings, and otherwise ends with an error; it never panics or loops.
func FuzzReadMessage(f *testing.F) {
	frame := func(fin bool, op ws.OpCode, masked bool, p []byte) []byte {
		var b bytes.Buffer
		h := ws.Header{Fin: fin, OpCode: op, Masked: masked, Length: int64(len(p))}
		if masked {
			h.Mask = [4]byte{1, 2, 3, 4}
		}
		_ = ws.WriteHeader(&b, h)
		q := bytes.Clone(p)
		if masked {
			ws.Cipher(q, h.Mask, 0)
		}
		b.Write(q)
		return b.Bytes()
	}
	f.Add(frame(true, ws.OpText, true, []byte(`{"id":1,"method":"ping"}`)))
	f.Add(append(frame(false, ws.OpText, true, []byte("ab")), frame(true, ws.OpContinuation, true, []byte("cd"))...))
	f.Add(append(frame(true, ws.OpPing, true, []byte("hi")), frame(true, ws.OpClose, true, []byte{3, 232})...))
	f.Add(frame(true, ws.OpText, false, []byte("unmasked")))
	f.Add(frame(true, ws.OpBinary, true, bytes.Repeat([]byte("x"), 300)))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	const keep, limit = 64, 256
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &wsConn{br: bufio.NewReaderSize(bytes.NewReader(in), readBufferBytes)}
		var buf bytes.Buffer
		for range len(in) + 1 { // each message consumes at least a header's 2 bytes
			m, err := c.readMessage(&buf, keep, limit)
			if err != nil {
				return // the end of the input, or of a connection that broke the protocol
			}
			switch m.op {
			case ws.OpPing:
				if len(m.payload) > ws.MaxControlFramePayloadSize {
					t.Fatalf("a ping of %d bytes", len(m.payload))
				}
			case ws.OpText, ws.OpBinary:
				if len(m.payload) > keep || (m.over && len(m.payload) != keep) {
					t.Fatalf("%d bytes kept (over %v), bound %d", len(m.payload), m.over, keep)
				}
			default:
				t.Fatalf("a message of opcode %d returned", m.op)
			}
		}
		t.Fatal("more messages than the input could hold")
	})
}
