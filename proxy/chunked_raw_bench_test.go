package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// BenchmarkForwardChunks forwards 1 MiB of logs -f's chunks (one log line
// of about 1 KiB each) with forwardChunks, and decodes and frames them
// again as before it, for comparison: the CPU of the framing alone, without
// the syscalls.
func BenchmarkForwardChunks(b *testing.B) {
	line := strings.Repeat("dockgate ", 111) + "\n"
	var body bytes.Buffer
	cw := bufio.NewWriter(&body)
	for body.Len()+cw.Buffered() < 1<<20 {
		chunkedWriter{w: cw}.Write([]byte("\x01\x00\x00\x00\x00\x00\x03\xe8" + line))
	}
	chunkedWriter{w: cw}.Close()
	cw.Flush()
	raw := body.Bytes()
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		w := bufio.NewWriterSize(io.Discard, connBufSize)
		for b.Loop() {
			br := bufio.NewReaderSize(bytes.NewReader(raw), upstreamReadBufSize)
			if _, err, _ := forwardChunks(br, w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoded", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		w := bufio.NewWriterSize(io.Discard, connBufSize)
		buf := chunkBuffer(copyBufSize)
		for b.Loop() {
			cr := newChunkedReader(bufio.NewReaderSize(bytes.NewReader(raw), upstreamReadBufSize))
			for {
				n, err := cr.Read(chunkData(buf))
				if n > 0 {
					w.Write(chunkFrame(buf, n))
				}
				if err != nil {
					break
				}
			}
		}
	})
}
