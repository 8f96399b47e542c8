package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

var goodHeads = []string{
	"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
	"HEAD /_ping HTTP/1.0\r\n\r\n",
	"POST /v1.41/containers/create?name=x HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"POST /build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n0\r\n\r\n",
	"POST /containers/x/attach?stream=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
	"POST /session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
	"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: X-A, Host, keep-alive\r\nX-A: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\r\n",
}

// FuzzReadRequestHead: the parser never panics; what it accepts is an
// origin-form request with clean header lines and a framing dockgate can
// follow; and the head dockgate forwards parses back, under the same
// rules, to the same request with the same judged headers.
func FuzzReadRequestHead(f *testing.F) {
	for _, h := range goodHeads {
		f.Add([]byte(h))
	}
	for _, tc := range badHeads {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readRequestHead(bufio.NewReaderSize(bytes.NewReader(data), 16), testLimits)
		if err != nil {
			if s := statusOf(err); s == 0 {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v is neither a refusal nor the end of input", err)
				}
			} else if s < 400 || s > 499 {
				t.Fatalf("refusal with status %d", s)
			}
			return
		}
		if !strings.HasPrefix(h.Target, "/") || h.URL == nil {
			t.Fatalf("accepted target %q", h.Target)
		}
		if h.Size > testLimits.MaxHeaderBytes {
			t.Fatalf("accepted a head of %d bytes", h.Size)
		}
		for _, fl := range h.Fields {
			if strings.ContainsAny(fl.Name, "\r\n\x00 :") || strings.ContainsAny(fl.Value, "\r\n\x00") {
				t.Fatalf("accepted header line %q: %q", fl.Name, fl.Value)
			}
		}
		if h.ContentLength < -1 || (h.chunked() && h.HasContentLength) {
			t.Fatalf("accepted framing: length %d, has Content-Length %v", h.ContentLength, h.HasContentLength)
		}

		// Read again on a connection that keeps its heads (the same
		// head twice, then after another head), it is the same head.
		var prev headCache
		for _, before := range []string{string(data), goodHeads[2]} {
			readNextRequestHead(bufio.NewReader(strings.NewReader(before)), testLimits, &prev)
			again, err := readNextRequestHead(bufio.NewReaderSize(bytes.NewReader(data), 16), testLimits, &prev)
			if err != nil {
				t.Fatalf("read after %q: %v", before, err)
			}
			if diff := headDiff(h, again); diff != "" {
				t.Fatalf("read after %q: %s", before, diff)
			}
		}

		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		writeUpstreamHead(w, h, h.ContentLength)
		w.Flush()
		lim := testLimits
		lim.MaxHeaderBytes += 256 // dockgate's own framing and Host lines
		fw, err := readRequestHead(bufio.NewReader(&b), lim)
		if err != nil {
			t.Fatalf("forwarded head %q does not parse: %v", b.String(), err)
		}
		if fw.Method != h.Method || fw.Target != h.Target || fw.ContentLength != h.ContentLength || fw.Upgrade != h.Upgrade {
			t.Fatalf("forwarded %s %s length %d upgrade %v; client sent %s %s length %d upgrade %v",
				fw.Method, fw.Target, fw.ContentLength, fw.Upgrade, h.Method, h.Target, h.ContentLength, h.Upgrade)
		}
		if fw.Close || fw.ExpectContinue {
			t.Fatalf("forwarded head asks to close (%v) or to continue (%v)", fw.Close, fw.ExpectContinue)
		}
		// What was judged is what dockerd reads.
		for _, pair := range [][2]*requestHead{{h, fw}, {fw, h}} {
			for k, v := range pair[0].Header {
				if hopByHop[k] || k == "Host" {
					continue
				}
				if !slices.Equal(v, pair[1].Header[k]) {
					t.Fatalf("header %s judged as %q, forwarded as %q", k, h.Header[k], fw.Header[k])
				}
			}
		}
	})
}

// FuzzChunkedReader: the decoder never panics, never makes up bytes, stops
// with a refusal or "unexpected EOF" on anything it does not accept, and a
// body it accepted, chunked again in any sizes, decodes to the same bytes.
func FuzzChunkedReader(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
		"0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"-5\r\nhello\r\n0\r\n\r\n",
		"5\r\nhelloXX0\r\n\r\n",
		"fffffffffffffff\r\nabc",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, piece uint8) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		out, err := io.ReadAll(newChunkedReader(br))
		// A Read takes what is buffered: a reader that has one byte at a
		// time must decode the same body, and refuse the same bodies.
		slow, slowErr := io.ReadAll(newChunkedReader(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16)))
		if (err == nil) != (slowErr == nil) || err == nil && !bytes.Equal(out, slow) {
			t.Fatalf("read whole: %q, %v; read a byte at a time: %q, %v", out, err, slow, slowErr)
		}
		if err != nil {
			if statusOf(err) != 400 && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v is neither a 400 refusal nor unexpected EOF", err)
			}
			return
		}
		if len(out) > len(data) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(data))
		}
		var enc bytes.Buffer
		w := bufio.NewWriter(&enc)
		cw := chunkedWriter{w: w}
		n := int(piece) + 1
		for rest := out; len(rest) > 0; {
			k := min(n, len(rest))
			cw.Write(rest[:k])
			rest = rest[k:]
		}
		cw.Close()
		w.Flush()
		enc.WriteString("NEXT")
		br2 := bufio.NewReaderSize(&enc, 16)
		again, err := io.ReadAll(newChunkedReader(br2))
		if err != nil {
			t.Fatalf("re-encoded body refused: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("round trip gave %q, want %q", again, out)
		}
		if rest, _ := io.ReadAll(br2); string(rest) != "NEXT" {
			t.Fatalf("round trip left %q after the body", rest)
		}
	})
}

// FuzzForwardChunks: forwarding dockerd's chunks as they came agrees with
// decoding them (chunkedReader): the same bodies accepted, with the same
// data and the same bytes left after them; the same bodies refused, in the
// same way; and what went out is always a part of what came that a client
// decodes without a refusal, whatever pieces the socket brought.
func FuzzForwardChunks(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
		"0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"5\r\nhelloX\r\n0\r\n\r\n",
		"3\r\nhello\r\n0\r\n\r\n",
		"fffffffffffffff\r\nabc",
		"0\r\nX-A: b\n\r\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, pieces uint8) {
		want, wantErr := io.ReadAll(newChunkedReader(bufio.NewReaderSize(bytes.NewReader(data), 16)))
		var src io.Reader = bytes.NewReader(data)
		if pieces%2 == 1 {
			src = iotest.OneByteReader(src)
		}
		out, n, err, rest := forwardRaw(src)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("forwarded with %v, decoded with %v", err, wantErr)
		}
		if err != nil && !(errors.Is(err, io.ErrUnexpectedEOF) && errors.Is(wantErr, io.ErrUnexpectedEOF) || statusOf(err) == 400 && statusOf(wantErr) == 400) {
			t.Fatalf("forwarding refused with %v, decoding with %v", err, wantErr)
		}
		if !bytes.HasPrefix(data, []byte(strings.TrimSuffix(out, "0\r\n\r\n"))) {
			t.Fatalf("forwarded %q, not a part of what came", out)
		}
		sent, sentErr := io.ReadAll(newChunkedReader(bufio.NewReaderSize(strings.NewReader(out), 16)))
		if err == nil && sentErr != nil || err != nil && !errors.Is(sentErr, io.ErrUnexpectedEOF) {
			t.Fatalf("forwarded %q, which a client decodes with %v", out, sentErr)
		}
		if !bytes.Equal(sent, want) || n != int64(len(want)) {
			t.Fatalf("forwarded data %q (counted %d), decoded %q", sent, n, want)
		}
		if err == nil {
			br := bufio.NewReaderSize(bytes.NewReader(data), 16)
			io.ReadAll(newChunkedReader(br))
			if left, _ := io.ReadAll(br); rest != string(left) {
				t.Fatalf("left %q after the body, decoding left %q", rest, left)
			}
		}
	})
}
