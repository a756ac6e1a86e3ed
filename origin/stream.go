package origin

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// StreamType is the media type of a streamed listing: one page per line, each line exactly the
// page object of the paged form ({"users":[…],"next_cursor":"…"}), "\n" after each.
const StreamType = "application/x-ndjson"

// readStream reads a streamed listing from r and hands each line (without its "\n") to page,
// which decodes it and says whether it was the listing's last page (next_cursor ""). The
// line's bytes are only valid during the call: one buffer is reused, so a stream of a
// million rows costs one page of memory, never the whole body.
//
// It returns the number of lines page accepted, and:
//   - nil when the answer ended after a complete line: at the last page, or earlier because the
//     origin chose to end it there (the caller goes on from that page's cursor);
//   - ErrBadResponse for what a working origin never sends: an answer without a page, a page
//     cut off by the end of the answer (a truncated stream), a line over maxLine bytes, an empty
//     line, anything after the last page;
//   - the reader's error when reading fails (a broken connection): pages delivered before it
//     stand, and the caller may resume after the last one;
//   - page's error, as it is.
func readStream(r io.Reader, maxLine int64, page func(line []byte) (last bool, err error)) (int, error) {
	return readStreamSize(r, 64<<10, maxLine, page)
}

// readStreamSize is readStream with a read buffer of bufSize bytes (the fuzz test makes lines
// longer than it).
func readStreamSize(r io.Reader, bufSize int, maxLine int64, page func(line []byte) (last bool, err error)) (int, error) {
	br := bufio.NewReaderSize(r, bufSize)
	var long []byte // a line longer than br's buffer is gathered here, reused
	pages := 0
	for {
		line, err := readLine(br, &long, maxLine)
		switch {
		case err == io.EOF && len(line) == 0:
			if pages == 0 {
				return 0, badResponse("streamed listing without a page")
			}
			return pages, nil
		case err == io.EOF:
			return pages, badResponse("streamed listing ends inside a page (%d bytes without a newline): truncated", len(line))
		case err != nil:
			return pages, err
		case len(line) == 0:
			return pages, badResponse("streamed listing has an empty line after page %d", pages)
		}
		last, err := page(line)
		if err != nil {
			return pages, err
		}
		pages++
		if last {
			// Nothing may follow the last page. A read that fails here changes nothing: the
			// listing is complete.
			if n, _ := br.Read(make([]byte, 1)); n > 0 {
				return pages, badResponse("streamed listing goes on after its last page")
			}
			return pages, nil
		}
	}
}

// readLine reads up to "\n" (not included) from br. It returns io.EOF with the bytes of an
// unfinished line when the input ends without one.
func readLine(br *bufio.Reader, long *[]byte, maxLine int64) ([]byte, error) {
	frag, err := br.ReadSlice('\n')
	if err == nil {
		if int64(len(frag)-1) > maxLine {
			return nil, badResponse("streamed page longer than %d bytes", maxLine)
		}
		return frag[:len(frag)-1], nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return frag, err
	}
	buf := append((*long)[:0], frag...)
	defer func() { *long = buf[:0] }()
	for {
		if int64(len(buf)) > maxLine {
			return nil, badResponse("streamed page longer than %d bytes", maxLine)
		}
		frag, err = br.ReadSlice('\n')
		buf = append(buf, frag...)
		switch {
		case err == nil:
			if int64(len(buf)-1) > maxLine {
				return nil, badResponse("streamed page longer than %d bytes", maxLine)
			}
			return buf[:len(buf)-1], nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return buf, err
		}
	}
}

// isStream reports whether a Content-Type header is StreamType (parameters ignored).
func isStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), StreamType)
}
