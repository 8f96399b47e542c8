package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// forwardRaw forwards a chunked body with forwardChunks from a reader of
// upstreamReadBufSize over src, and returns what was written (with the last
// chunk the caller adds), the data count, the error, and what is left.
func forwardRaw(src io.Reader) (out string, data int64, err error, rest string) {
	br := bufio.NewReaderSize(src, upstreamReadBufSize)
	var b bytes.Buffer
	w := bufio.NewWriterSize(&b, connBufSize)
	data, err, werr := forwardChunks(br, w)
	if werr != nil {
		panic(werr) // a bytes.Buffer takes every write
	}
	if err == nil {
		chunkedWriter{w: w}.Close()
	}
	w.Flush()
	r, _ := io.ReadAll(br)
	return b.String(), data, err, string(r)
}

// Every body chunkedReader accepts goes out as it came up to its last
// chunk, whether dockerd's bytes come at once or one at a time, and the
// bytes after it stay for the next response.
func TestForwardChunksSendsValidBodiesAsTheyCame(t *testing.T) {
	for _, tc := range validChunkedBodies() {
		last := lastChunkAt(t, tc.raw)
		for _, src := range []struct {
			name string
			r    func(string) io.Reader
		}{
			{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
			{"a byte at a time", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
		} {
			t.Run(tc.name+"/"+src.name, func(t *testing.T) {
				out, data, err, rest := forwardRaw(src.r(tc.raw + "NEXT"))
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if want := tc.raw[:last] + "0\r\n\r\n"; out != want {
					t.Errorf("forwarded %q, want %q", truncate(out, 80), truncate(want, 80))
				}
				if data != int64(len(tc.want)) {
					t.Errorf("counted %d data bytes, want %d", data, len(tc.want))
				}
				if rest != "NEXT" {
					t.Errorf("left %q after the body, want NEXT", rest)
				}
			})
		}
	}
}

// lastChunkAt is where the last chunk of a valid chunked body starts.
func lastChunkAt(t *testing.T, raw string) int {
	t.Helper()
	i := 0
	for {
		line, next, err := scanLine([]byte(raw[i:]), maxChunkLine, "size")
		if err != nil {
			t.Fatalf("test body %q: %v", truncate(raw[i:], 40), err)
		}
		n, err := chunkSize(line)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return i
		}
		i += next + int(n) + 2
	}
}

// A body chunkedReader refuses is refused the same way, and what went out
// before the refusal is a part of it that carries the data chunkedReader
// gave before refusing: never the malformed piece.
func TestForwardChunksRefusesWhatChunkedReaderRefuses(t *testing.T) {
	for _, tc := range badChunkedBodies() {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err, _ := forwardRaw(strings.NewReader(tc.raw))
			switch {
			case err == nil:
				t.Fatalf("accepted, forwarded %q", out)
			case tc.want == truncated:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
				}
			default:
				if statusOf(err) != tc.want {
					t.Fatalf("error %v (status %d), want a %d refusal", err, statusOf(err), tc.want)
				}
			}
			if !strings.HasPrefix(tc.raw, out) {
				t.Fatalf("forwarded %q, not a part of what came", out)
			}
			// The client decodes from it the data chunkedReader gave
			// before its refusal.
			sent, _, err := decodeChunked(out)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("forwarded %q, which a client decodes with %v, want a body cut short", out, err)
			}
			if decoded, _, _ := decodeChunked(tc.raw); sent != decoded {
				t.Errorf("forwarded data %q, chunkedReader's %q", sent, decoded)
			}
		})
	}
}

// A stream (logs -f) is never held back: each piece dockerd sends goes to
// the client before dockgate waits for the next one, whether the pause
// comes inside a chunk's data, before its CRLF, or inside a size line.
func TestForwardChunksNeverHoldsBackWhatCame(t *testing.T) {
	for _, tc := range []struct {
		name, first, want1, then, want2 string
	}{
		{"pause before the CRLF after the data", "6\r\nfirst\n", "6\r\nfirst\n", "\r\n7\r\nsecond\n\r\n0\r\n\r\n", "\r\n7\r\nsecond\n\r\n0\r\n\r\n"},
		{"pause inside the next size line", "6\r\nfirst\n\r\n1", "6\r\nfirst\n\r\n", "0\r\nsecond and more\n\r\n0\r\n\r\n", "10\r\nsecond and more\n\r\n0\r\n\r\n"},
		{"pause inside a chunk's data", "10\r\n0123456", "10\r\n0123456", "789abcdef\r\n0\r\n\r\n", "789abcdef\r\n0\r\n\r\n"},
		{"pause before the last chunk", "6\r\nfirst\n\r\n", "6\r\nfirst\n\r\n", "0\r\n\r\n", "0\r\n\r\n"},
		{"pause inside the trailers", "6\r\nfirst\n\r\n0\r\nX-A: 1\r\n", "6\r\nfirst\n\r\n", "\r\n", "0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, upPeer := net.Pipe()
			client, clientPeer := net.Pipe()
			defer func() {
				for _, c := range []net.Conn{up, upPeer, client, clientPeer} {
					c.Close()
				}
			}()
			done := make(chan error, 1)
			go func() {
				w := bufio.NewWriterSize(client, connBufSize)
				_, err, werr := forwardChunks(bufio.NewReaderSize(upPeer, upstreamReadBufSize), w)
				if err == nil && werr == nil {
					chunkedWriter{w: w}.Close()
					werr = w.Flush()
				}
				done <- errors.Join(err, werr)
			}()
			clientPeer.SetReadDeadline(time.Now().Add(10 * time.Second))
			go up.Write([]byte(tc.first))
			got := make([]byte, 0, 100)
			for len(got) < len(tc.want1) {
				p := make([]byte, 100)
				n, err := clientPeer.Read(p)
				if err != nil {
					t.Fatalf("after %q: %v; want %q without waiting for the rest", got, err, tc.want1)
				}
				got = append(got, p[:n]...)
			}
			if string(got) != tc.want1 {
				t.Fatalf("first %q, want %q", got, tc.want1)
			}
			go up.Write([]byte(tc.then))
			rest, err := io.ReadAll(io.LimitReader(clientPeer, int64(len(tc.want2))))
			if err != nil || string(rest) != tc.want2 {
				t.Fatalf("then %q, %v; want %q", rest, err, tc.want2)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A body already read from is decoded, not forwarded raw, and so is one on
// a reader too small to hold a last chunk with its trailers.
func TestUnreadChunked(t *testing.T) {
	body := func(size int) *upstreamBody {
		br := bufio.NewReaderSize(strings.NewReader("5\r\nhello\r\n0\r\n\r\n"), size)
		return &upstreamBody{src: newChunkedReader(br), br: br, left: -1}
	}
	if _, ok := unreadChunked(body(upstreamReadBufSize)); !ok {
		t.Errorf("an unread chunked body on dockerd's reader is not forwarded raw")
	}
	if _, ok := unreadChunked(body(connBufSize)); ok {
		t.Errorf("a body on a %d-byte reader is forwarded raw", connBufSize)
	}
	read := body(upstreamReadBufSize)
	read.Read(make([]byte, 2))
	if _, ok := unreadChunked(read); ok {
		t.Errorf("a body read from is forwarded raw")
	}
	if _, ok := unreadChunked(&upstreamBody{src: strings.NewReader("x"), left: 1}); ok {
		t.Errorf("a body of known length is forwarded as chunks")
	}
}
