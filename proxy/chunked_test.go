package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"strings"
	"testing"
	"time"
)

// decodeChunked decodes a chunked body through a small buffer and returns
// the body and what is left after it.
func decodeChunked(raw string) (body, rest string, err error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), 16)
	b, err := io.ReadAll(newChunkedReader(br))
	r, _ := io.ReadAll(br)
	return string(b), string(r), err
}

// chunkedCase is a chunked body and the data it carries.
type chunkedCase struct {
	name, raw, want string
}

// validChunkedBodies are bodies chunkedReader accepts, whatever the reader holds at a time.
func validChunkedBodies() []chunkedCase {
	var many, manyWant strings.Builder
	for i := range 1000 {
		c := string(rune('a' + i%26))
		many.WriteString("1\r\n" + c + "\r\n")
		manyWant.WriteString(c)
	}
	many.WriteString("0\r\n\r\n")
	big := strings.Repeat("0123456789abcdef", 100<<10/16)

	return []chunkedCase{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
		{"empty body", "0\r\n\r\n", ""},
		{"upper-case hex size", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"lower-case hex size", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"leading zeros in the size", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"chunk extensions are dropped", "5;name=value\r\nhello\r\n6;a;b=\"q;x\"\r\n world\r\n0;last\r\n\r\n", "hello world"},
		{"trailers are dropped", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n", "hello"},
		{"data with CR and LF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
		{"data that looks like a chunk line", "a\r\n0\r\n\r\nGET /\r\n0\r\n\r\n", "0\r\n\r\nGET /"},
		{"many one-byte chunks", many.String(), manyWant.String()},
		{"one chunk larger than the buffer", "19000\r\n" + big + "\r\n0\r\n\r\n", big},
	}
}

func TestChunkedReaderDecodesValidBodies(t *testing.T) {
	for _, tc := range validChunkedBodies() {
		t.Run(tc.name, func(t *testing.T) {
			body, rest, err := decodeChunked(tc.raw + "NEXT")
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if body != tc.want {
				t.Errorf("body %q, want %q", truncate(body, 60), truncate(tc.want, 60))
			}
			// The reader stops at the end of the body: the next request
			// is left for the connection loop.
			if rest != "NEXT" {
				t.Errorf("left %q after the body, want %q", rest, "NEXT")
			}
		})
	}
}

// Kinds of refusal of a bad chunked body.
const (
	refused   = 400
	truncated = -1
)

// badChunkedCase is a chunked body chunkedReader refuses, and how.
type badChunkedCase struct {
	name string
	raw  string
	want int
}

func badChunkedBodies() []badChunkedCase {
	return []badChunkedCase{
		{"bare LF after the chunk size", "5\nhello\r\n0\r\n\r\n", refused},
		{"bare LF after the last chunk size", "5\r\nhello\r\n0\n\r\n", refused},
		{"bare LF as the end of the trailers", "5\r\nhello\r\n0\r\n\n", refused},
		{"bare LF after a trailer", "0\r\nX-A: b\n\r\n", refused},
		{"data not followed by CRLF", "5\r\nhelloX\r\n0\r\n\r\n", refused},
		{"data followed by a bare LF", "5\r\nhello\n0\r\n\r\n", refused},
		{"data followed by nothing but the next size", "5\r\nhello0\r\n\r\n", refused},
		{"more data than the size says", "3\r\nhello\r\n0\r\n\r\n", refused},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n", refused},
		{"plus sign in the size", "+5\r\nhello\r\n0\r\n\r\n", refused},
		{"space before the size", " 5\r\nhello\r\n0\r\n\r\n", refused},
		{"space after the size", "5 \r\nhello\r\n0\r\n\r\n", refused},
		{"space before an extension", "5 ;x\r\nhello\r\n0\r\n\r\n", refused},
		{"tab in the size", "5\t\r\nhello\r\n0\r\n\r\n", refused},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", refused},
		{"underscore in the size", "1_0\r\n0123456789abcdef\r\n0\r\n\r\n", refused},
		{"not hex", "g\r\nhello\r\n0\r\n\r\n", refused},
		{"empty size line", "\r\nhello\r\n0\r\n\r\n", refused},
		{"only an extension", ";x\r\nhello\r\n0\r\n\r\n", refused},
		{"overlong size with leading zeros", "0000000000000005\r\nhello\r\n0\r\n\r\n", refused},
		{"size overflowing int64", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n", refused},
		{"size line longer than the limit", "5;" + strings.Repeat("x", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n", refused},
		{"trailer without a colon", "5\r\nhello\r\n0\r\n0\r\n\r\n", refused},
		{"trailer with a space before the colon", "0\r\nX-A : b\r\n\r\n", refused},
		{"trailer with an empty name", "0\r\n: b\r\n\r\n", refused},
		{"folded trailer line", "0\r\nX-A: b\r\n c\r\n\r\n", refused},
		{"trailer with a control byte", "0\r\nX-A: b\x01c\r\n\r\n", refused},
		{"malformed trailer, then the body cut short", "0\r\nbad\r\nX-A: b", refused},
		{"one trailer longer than the limit", "0\r\nX-A: " + strings.Repeat("t", maxChunkLine) + "\r\n\r\n", refused},
		{"trailers longer than the limit together", "0\r\n" + strings.Repeat("X-A: "+strings.Repeat("t", 100)+"\r\n", 50) + "\r\n", refused},
		{"body cut inside the size line", "5", truncated},
		{"body cut inside the data", "5\r\nhel", truncated},
		{"body cut before the CRLF after the data", "5\r\nhello", truncated},
		{"body cut between CR and LF after the data", "5\r\nhello\r", truncated},
		{"body cut before the last chunk", "5\r\nhello\r\n", truncated},
		{"body cut before the end of the trailers", "5\r\nhello\r\n0\r\n", truncated},
		{"body cut inside a trailer", "5\r\nhello\r\n0\r\nX-A: b", truncated},
		{"empty body stream", "", truncated},
		{"huge size with no data", "fffffffffffffff\r\nabc", truncated},
	}
}

func TestChunkedReaderRefusesBadBodies(t *testing.T) {
	for _, tc := range badChunkedBodies() {
		t.Run(tc.name, func(t *testing.T) {
			body, _, err := decodeChunked(tc.raw)
			switch {
			case err == nil:
				t.Fatalf("accepted, body %q", body)
			case tc.want == truncated:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
				}
			default:
				if statusOf(err) != tc.want {
					t.Fatalf("error %v (status %d), want a %d refusal", err, statusOf(err), tc.want)
				}
			}
		})
	}
}

func TestChunkedReaderTrailersJustUnderTheLimit(t *testing.T) {
	trailer := "X-A: " + strings.Repeat("t", maxChunkLine-len("X-A: ")-2) + "\r\n"
	if _, _, err := decodeChunked("0\r\n" + trailer + "\r\n"); err != nil {
		t.Fatalf("a trailer of %d bytes refused: %v", len(trailer), err)
	}
}

func TestChunkedReaderKeepsItsError(t *testing.T) {
	cr := newChunkedReader(bufio.NewReader(strings.NewReader("5\nhello\r\n0\r\n\r\n")))
	var p [8]byte
	_, err1 := cr.Read(p[:])
	_, err2 := cr.Read(p[:])
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v then %v, want the same refusal twice", err1, err2)
	}
}

func TestChunkedWriterRoundTrips(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	cw := chunkedWriter{w: w}
	for _, part := range []string{"hello", "", " ", strings.Repeat("x", 70000), "0\r\n\r\n"} {
		if _, err := cw.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	cw.Close()
	w.Flush()
	body, rest, err := decodeChunked(b.String())
	if err != nil || rest != "" {
		t.Fatalf("decode: %v, %q left", err, rest)
	}
	want(t, "body", body, "hello "+strings.Repeat("x", 70000)+"0\r\n\r\n")
}

// TestChunkFrame: a frame built in place is one chunk that Go's own
// chunked reader reads back, for every size a copy buffer can hold.
func TestChunkFrame(t *testing.T) {
	buf := chunkBuffer(copyBufSize)
	for _, n := range []int{1, 15, 16, 255, 4096, 0x7fff, copyBufSize} {
		data := chunkData(buf)[:n]
		for i := range data {
			data[i] = byte('a' + i%26)
		}
		want := string(data)
		frame := append([]byte(nil), chunkFrame(buf, n)...)
		frame = append(frame, "0\r\n\r\n"...)
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(frame)))
		if err != nil || string(got) != want {
			t.Errorf("size %d: read back %d bytes, %v", n, len(got), err)
		}
	}
}

// One read of the socket often brings several chunks: a Read hands over
// all of them, so that they go on in one write.
func TestChunkedReaderTakesEveryChunkAlreadyRead(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("5\r\nhello\r\n6;x\r\n world\r\n3\r\n!!!\r\n0\r\n\r\nNEXT"), 4096)
	br.Peek(1) // the whole input is buffered
	cr := newChunkedReader(br)
	p := make([]byte, 100)
	n, err := cr.Read(p)
	if err != nil || string(p[:n]) != "hello world!!!" {
		t.Fatalf("first Read: %q, %v; want every buffered chunk's data", p[:n], err)
	}
	// The last chunk is left for a Read of its own.
	if n, err := cr.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("second Read: %d bytes, %v; want EOF", n, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
		t.Errorf("left %q after the body", rest)
	}
}

// A Read that has data never waits for more: a stream (logs -f) whose
// source pauses mid-chunk or after a chunk's data must not be held back.
func TestChunkedReaderNeverWaitsOnceItHasData(t *testing.T) {
	for _, tc := range []struct {
		name, first, want1, then, want2 string
	}{
		{"pause before the CRLF after the data", "6\r\nfirst\n", "first\n", "\r\n7\r\nsecond\n\r\n0\r\n\r\n", "second\n"},
		{"pause inside the next size line", "6\r\nfirst\n\r\n1", "first\n", "0\r\nsecond and more\n\r\n0\r\n\r\n", "second and more\n"},
		{"pause inside a chunk's data", "10\r\n0123456", "0123456", "789abcdef\r\n0\r\n\r\n", "789abcdef"},
		{"pause before the last chunk", "6\r\nfirst\n\r\n", "first\n", "0\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := net.Pipe()
			defer src.Close()
			defer dst.Close()
			go src.Write([]byte(tc.first))
			cr := newChunkedReader(bufio.NewReader(dst))
			dst.SetReadDeadline(time.Now().Add(10 * time.Second))
			p := make([]byte, 100)
			n, err := cr.Read(p)
			if err != nil || string(p[:n]) != tc.want1 {
				t.Fatalf("first Read: %q, %v; want %q without waiting for the rest", p[:n], err, tc.want1)
			}
			go src.Write([]byte(tc.then))
			var got []byte
			for {
				n, err := cr.Read(p)
				got = append(got, p[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
			}
			if string(got) != tc.want2 {
				t.Errorf("then %q, want %q", got, tc.want2)
			}
		})
	}
}
