package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

// decodeChunked decodes a chunked body through a small buffer and returns
// the body and what is left after it.
func decodeChunked(raw string) (body, rest string, err error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), 16)
	b, err := io.ReadAll(newChunkedReader(br))
	r, _ := io.ReadAll(br)
	return string(b), string(r), err
}

func TestChunkedReaderDecodesValidBodies(t *testing.T) {
	var many, manyWant strings.Builder
	for i := range 1000 {
		c := string(rune('a' + i%26))
		many.WriteString("1\r\n" + c + "\r\n")
		manyWant.WriteString(c)
	}
	many.WriteString("0\r\n\r\n")
	big := strings.Repeat("0123456789abcdef", 100<<10/16)

	for _, tc := range []struct {
		name, raw, want string
	}{
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
	} {
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

func TestChunkedReaderRefusesBadBodies(t *testing.T) {
	const (
		refused   = 400
		truncated = -1
	)
	for _, tc := range []struct {
		name string
		raw  string
		want int
	}{
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
	} {
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
