package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// Forwarding a chunked response as dockerd framed it.
//
// Decoding dockerd's chunks and framing them again cost a copy of every
// byte out of the connection's reader and a Read per piece: 225 µs of CPU
// per MiB over a bare relay for an archive download and 615 for logs -f
// (docs/performance.md). Where nothing reads the body (no guard, no
// capture, no new ID), the chunks go to the client as they came, straight
// from the reader's buffer. Only their size lines and the CRLF after each
// chunk's data are read, as strictly as chunkedReader reads them, so that
// the client gets what chunkedReader would have accepted and nothing else:
// a malformed chunk is never forwarded. The last chunk is not forwarded:
// its extensions and trailers are dropped, as chunkedReader drops them, and
// the caller ends the body with a last chunk of its own.

// chunkScanner follows the framing of a chunked body across reads.
type chunkScanner struct {
	left int64 // bytes left in the current chunk's data
	crlf bool  // the current chunk's data is read, its CRLF is not
	data int64 // data bytes scanned
	// end is set once the last chunk and its trailers are scanned: the
	// offset just after them in the slice given to the final scan.
	end int
}

// errNeedMore says a size line, a CRLF or the last chunk is not whole in
// what scan was given.
var errNeedMore = errors.New("chunk framing continues past the data read")

// scan reads the framing of p, which continues where the last scan's
// forwarded part ended, and returns how much of p may be forwarded as it
// is: whole chunks and pieces of a chunk's data, never a partial size line
// or CRLF, never the last chunk. When the last chunk is whole, s.end is
// set. errNeedMore asks for p again with more bytes after it.
func (s *chunkScanner) scan(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		switch {
		case s.left > 0:
			k := min(s.left, int64(len(p)-i))
			i += int(k)
			s.left -= k
			s.data += k
			s.crlf = s.left == 0
		case s.crlf:
			if len(p)-i < 2 {
				return i, errNeedMore
			}
			if p[i] != '\r' || p[i+1] != '\n' {
				return i, badRequest("chunk data not followed by CRLF")
			}
			i += 2
			s.crlf = false
		default:
			line, next, err := scanLine(p[i:], maxChunkLine, "chunk size line")
			if err != nil {
				return i, err
			}
			size, err := chunkSize(line)
			if err != nil {
				return i, err
			}
			if size == 0 {
				end, err := scanTrailers(p[i+next:])
				if err != nil {
					return i, err
				}
				s.end = i + next + end
				return i, nil
			}
			s.left = size
			i += next
		}
	}
	return i, nil
}

// scanLine finds the line at the start of p as readLine would read it with
// max: its content without CRLF, and the offset after it.
func scanLine(p []byte, max int, what string) (line []byte, next int, err error) {
	nl := bytes.IndexByte(p, '\n')
	switch {
	case nl < 0 && len(p) > max:
		// Even with its LF next, the line would be too long.
		return nil, 0, &wireError{Status: http.StatusBadRequest, Msg: what + " longer than " + strconv.Itoa(max) + " bytes"}
	case nl < 0:
		return nil, 0, errNeedMore
	case nl+1 > max:
		return nil, 0, &wireError{Status: http.StatusBadRequest, Msg: what + " longer than " + strconv.Itoa(max) + " bytes"}
	}
	line, err = crlfLine(p[:nl+1], what)
	return line, nl + 1, err
}

// scanTrailers finds the end of the trailer fields at the start of p, as
// chunkedReader.trailers reads them.
func scanTrailers(p []byte) (int, error) {
	i, total := 0, 0
	for {
		line, next, err := scanLine(p[i:], maxChunkLine, "chunked trailer")
		if err != nil {
			return 0, err
		}
		i += next
		if total += len(line); total > maxChunkLine {
			return 0, badRequest("chunked trailers too large")
		}
		if len(line) == 0 {
			return i, nil
		}
		if err := checkTrailer(line); err != nil {
			return 0, err
		}
	}
}

// forwardChunks copies a chunked body from br to w as it came, up to and
// not including its last chunk, flushing w whenever the next read of br
// would wait for dockerd. It returns the data bytes forwarded, and an error
// of reading (io.ErrUnexpectedEOF for a body cut short, a wireError for
// malformed framing) or of writing, telling which.
func forwardChunks(br *bufio.Reader, w *bufio.Writer) (data int64, readErr, writeErr error) {
	var s chunkScanner
	want := 1
	for {
		if _, err := br.Peek(want); err != nil {
			// A piece of framing cut short is not forwarded.
			return s.data, eofIsUnexpected(err), nil
		}
		p, _ := br.Peek(br.Buffered())
		n, scanErr := s.scan(p)
		if n > 0 {
			if _, err := w.Write(p[:n]); err != nil {
				return s.data, nil, err
			}
			br.Discard(n)
		}
		switch {
		case scanErr == errNeedMore:
			want = len(p) - n + 1
		case scanErr != nil:
			// What came before the malformed framing goes out, as it
			// does when chunkedReader decodes the body.
			return s.data, scanErr, w.Flush()
		case s.end > 0:
			br.Discard(s.end - n)
			return s.data, nil, nil
		default:
			want = 1
		}
		if w.Buffered() > 0 {
			// Everything read is written: the next read waits for dockerd.
			if err := w.Flush(); err != nil {
				return s.data, nil, err
			}
		}
	}
}

// forwardChunked forwards b, a chunked body unreadChunked returned, with
// forwardChunks; b is at its end afterwards, or holds the error.
func (b *upstreamBody) forwardChunked(w *bufio.Writer) (data int64, readErr, writeErr error) {
	data, readErr, writeErr = forwardChunks(b.br, w)
	switch {
	case readErr != nil:
		b.err = readErr
	case writeErr != nil:
		// The rest of the body is not read: the connection goes.
		b.err = errBodyClosed
	default:
		b.err = io.EOF
	}
	return data, readErr, writeErr
}

// unreadChunked says whether body is dockerd's chunked body, unread.
func unreadChunked(body io.Reader) (*upstreamBody, bool) {
	b, ok := body.(*upstreamBody)
	if !ok || b.err != nil {
		return nil, false
	}
	cr, ok := b.src.(*chunkedReader)
	return b, ok && cr.left == 0 && !cr.crlf && cr.err == nil && b.br.Size() >= minRawReader
}

// minRawReader is the smallest reader forwardChunks can work with: it
// must hold a size line of maxChunkLine, or a last chunk with its trailers
// (a size line and up to maxChunkLine bytes of trailer fields, each line
// at least three bytes with its CRLF for one of content), whole.
const minRawReader = 2*maxChunkLine + 3*maxChunkLine + 2
