package origin

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzReadStream feeds arbitrary bytes to the stream reader with each line decoded as a
// memberships page, read whole and one byte at a time. Whatever the bytes, it never panics;
// it hands on only whole lines, of at most maxLine bytes, that are the input's lines in order;
// it fails only with ErrBadResponse (the input is in memory: no read error); and how the
// input arrives changes nothing.
func FuzzReadStream(f *testing.F) {
	page := `{"memberships":[{"channel":"C1","user":"U1","updated":1}],"next_cursor":"a"}`
	last := `{"memberships":[],"next_cursor":""}`
	f.Add([]byte(page+"\n"+last+"\n"), uint16(200))
	f.Add([]byte(page+"\n"+page+"\n"), uint16(200))      // ended early: fine, go on from "a"
	f.Add([]byte(page+"\n"+page[:20]), uint16(200))      // truncated
	f.Add([]byte(last+"\n"+page+"\n"), uint16(200))      // after the last page
	f.Add([]byte(""), uint16(200))                       // no page
	f.Add([]byte(page+"\n\n"), uint16(200))              // empty line
	f.Add([]byte(page+"\n"), uint16(20))                 // line too long
	f.Add([]byte(`{"users":[]}`+"\n"), uint16(200))      // not a memberships page
	f.Add([]byte(strings.Repeat("x", 100)), uint16(300)) // longer than the small buffer below
	f.Fuzz(func(t *testing.T, data []byte, maxLine uint16) {
		type outcome struct {
			lines, pages int
			err          error
		}
		run := func(r io.Reader, bufSize int) outcome {
			var o outcome
			var in []byte
			o.pages, o.err = readStreamSize(r, bufSize, int64(maxLine), func(line []byte) (bool, error) {
				if bytes.IndexByte(line, '\n') >= 0 || len(line) > int(maxLine) || len(line) == 0 {
					t.Fatalf("line %q with maxLine %d", line, maxLine)
				}
				in = append(append(in, line...), '\n')
				if !bytes.HasPrefix(data, in) {
					t.Fatalf("lines %q are not the start of the input %q", in, data)
				}
				o.lines++
				p, err := DecodeMembershipsPage("T1", line, 0)
				if err != nil {
					return false, err
				}
				return p.NextCursor == "", nil
			})
			if o.err != nil && !errors.Is(o.err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", o.err)
			}
			if o.err == nil && o.pages == 0 {
				t.Fatal("no error without a page")
			}
			return o
		}
		whole := run(bytes.NewReader(data), 64<<10)
		for _, o := range []outcome{run(bytes.NewReader(data), 16), run(iotest.OneByteReader(bytes.NewReader(data)), 16)} {
			if o.pages != whole.pages || o.lines != whole.lines || (o.err == nil) != (whole.err == nil) {
				t.Fatalf("whole: %d pages, %v; in pieces: %d pages, %v", whole.pages, whole.err, o.pages, o.err)
			}
		}
	})
}
