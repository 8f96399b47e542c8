package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// maxChunkLine bounds a chunk-size line with its extensions, and trailers.
const maxChunkLine = 4 << 10

// chunkedReader decodes a chunked request body strictly: CRLF line ends only,
// hexadecimal sizes without sign or space, CRLF after each chunk's data.
// net/http's reader is more lenient, and a proxy that is more lenient than
// the server behind it can be made to see a different body (CVE-2024-41110).
//
// A Read returns the data of every chunk its reader already holds, up to
// len(p), and waits for the socket only while it has returned nothing: the
// chunks one read of the socket brought then go on in one write, where one
// Read per chunk (and a read of the socket for the CRLF after each) cost up
// to twice the syscalls of a plain relay (docs/performance.md).
type chunkedReader struct {
	br   *bufio.Reader
	left int64 // bytes left in the current chunk
	// crlf is set when the current chunk's data is all read and the CRLF
	// after it is not yet.
	crlf bool
	err  error
}

func newChunkedReader(br *bufio.Reader) *chunkedReader { return &chunkedReader{br: br} }

func (cr *chunkedReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && cr.err == nil {
		// Once something is read, go on only with what is buffered.
		if n > 0 && !cr.buffered() {
			break
		}
		if cr.crlf {
			if cr.err = cr.chunkEnd(); cr.err != nil {
				break
			}
			cr.crlf = false
		}
		if cr.left == 0 {
			if cr.err = cr.nextChunk(); cr.err != nil {
				break
			}
		}
		q := p[n:]
		if int64(len(q)) > cr.left {
			q = q[:cr.left]
		}
		if n > 0 {
			q = q[:min(len(q), cr.br.Buffered())]
		}
		k, err := cr.br.Read(q)
		n += k
		cr.left -= int64(k)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		cr.err = err
		cr.crlf = cr.left == 0
	}
	if n > 0 {
		// An error after data is given with the next Read.
		return n, nil
	}
	return 0, cr.err
}

// buffered says whether the next step of Read can be taken from what the
// reader holds, without waiting for the socket: the CRLF after a chunk's
// data, a whole size line of a chunk with data (the last chunk, with its
// trailers, is left for a Read of its own), or data.
func (cr *chunkedReader) buffered() bool {
	have := cr.br.Buffered()
	if cr.left > 0 && !cr.crlf {
		return have > 0
	}
	skip := 0
	if cr.crlf {
		skip = 2
	}
	if have <= skip {
		return false
	}
	buf, _ := cr.br.Peek(have)
	line := buf[skip:]
	end := bytes.IndexByte(line, '\n')
	if end < 0 {
		return false
	}
	for _, c := range line[:end] {
		switch {
		case c == ';' || c == '\r':
			return false // a last chunk: only zeros came before
		case c != '0':
			return true // a size that is not zero, or a line nextChunk refuses
		}
	}
	return false
}

func (cr *chunkedReader) nextChunk() error {
	line, err := readLine(cr.br, maxChunkLine, http.StatusBadRequest, "chunk size line")
	if err != nil {
		return eofIsUnexpected(err)
	}
	n, err := chunkSize(line)
	if err != nil {
		return err
	}
	if n == 0 {
		return cr.trailers()
	}
	cr.left = n
	return nil
}

// chunkSize reads the size of a chunk size line: one to fifteen hex
// digits (no sign, no space, no prefix), then extensions after a ';',
// which are ignored. Fifteen digits cannot overflow an int64.
func chunkSize(line []byte) (int64, error) {
	size := line
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		size = line[:i]
	}
	if len(size) == 0 || len(size) > 15 {
		return 0, badRequest("malformed chunk size %q", truncate(string(line), 40))
	}
	var n int64
	for _, c := range size {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, badRequest("malformed chunk size %q", truncate(string(line), 40))
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}

func (cr *chunkedReader) chunkEnd() error {
	// Peeked, not read into an array: that array escaped to the heap, an
	// allocation per chunk.
	crlf, err := cr.br.Peek(2)
	if len(crlf) < 2 {
		return eofIsUnexpected(err)
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return badRequest("chunk data not followed by CRLF")
	}
	cr.br.Discard(2)
	return nil
}

// trailers reads and drops trailer fields: dockerd ignores them, and
// forwarding them would be one more thing to judge.
func (cr *chunkedReader) trailers() error {
	total := 0
	for {
		line, err := readLine(cr.br, maxChunkLine, http.StatusBadRequest, "chunked trailer")
		if err != nil {
			return eofIsUnexpected(err)
		}
		if total += len(line); total > maxChunkLine {
			return badRequest("chunked trailers too large")
		}
		if len(line) == 0 {
			return io.EOF
		}
		if err := checkTrailer(line); err != nil {
			return err
		}
	}
}

// checkTrailer refuses a trailer line that is not a header field. dockgate
// drops trailers, but a reader that parses them (net/http) refuses such a
// body, and dockgate must not accept what the reader at the other end
// would refuse. An obsolete folded line is refused too: its name does not
// start with a token character.
func checkTrailer(line []byte) error {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || !isToken(string(name)) {
		return badRequest("malformed chunked trailer %q", truncate(string(line), 40))
	}
	if i := ctlByte(value); i >= 0 {
		return badRequest("chunked trailer with a control byte (0x%02x)", value[i])
	}
	return nil
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// chunkedWriter encodes a body as chunks; each Write is one chunk, so the
// reader's pace is kept and streams are not held back.
type chunkedWriter struct {
	w *bufio.Writer
}

func (cw chunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	cw.w.WriteString(strconv.FormatInt(int64(len(p)), 16))
	cw.w.WriteString("\r\n")
	cw.w.Write(p)
	_, err := cw.w.WriteString("\r\n")
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// A chunk frame built in place: a buffer from chunkBuffer has room for the
// size line before its data (chunkData) and for the CRLF after it, so that
// chunkFrame can return the whole chunk as one slice and it goes out in one
// write. Framing each piece as a separate size line, data and CRLF cost up
// to three writes per piece of a streamed body.
const chunkHeadroom = 18 // 16 hex digits and CRLF

// chunkBuffer returns a buffer for chunks of up to size bytes.
func chunkBuffer(size int) []byte { return make([]byte, chunkHeadroom+size+2) }

// chunkData is the part of a chunkBuffer that data is read into.
func chunkData(buf []byte) []byte { return buf[chunkHeadroom : len(buf)-2] }

// chunkFrame frames the first n bytes of chunkData(buf) as one chunk and
// returns the frame; n must be positive.
func chunkFrame(buf []byte, n int) []byte {
	var size [chunkHeadroom]byte
	line := append(strconv.AppendInt(size[:0], int64(n), 16), '\r', '\n')
	start := chunkHeadroom - len(line)
	copy(buf[start:], line)
	end := chunkHeadroom + n
	buf[end], buf[end+1] = '\r', '\n'
	return buf[start : end+2]
}

// Close writes the last chunk.
func (cw chunkedWriter) Close() error {
	_, err := cw.w.WriteString("0\r\n\r\n")
	return err
}
