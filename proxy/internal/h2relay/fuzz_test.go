package h2relay

import (
	"bufio"
	"io"
	"testing"
	"time"
)

// FuzzRelay: whatever a client sends after the preface, the relay neither
// panics nor outlives its peers.
func FuzzRelay(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x00\x01\x01\x05\x00\x00\x00\x01\x82"))
	f.Add([]byte("\x00\x00\x0a\x01\x04\x00\x00\x00\x01\x83\x86\x44\x05/a/b/" + "\x00\x00\x08\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x03abc"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c1, c2 := socketPair(t)
		s1, s2 := socketPair(t)
		done := make(chan Result, 1)
		go func() {
			done <- Relay(t.Context(), c2, bufio.NewReader(c2), s2, bufio.NewReader(s2), &testWatcher{refuseMethod: "/a/b/"}, Options{MaxMessage: 1 << 10})
		}()
		go func() { io.Copy(io.Discard, s1); s1.Close() }()
		go func() { io.Copy(io.Discard, c1) }()
		c1.Write([]byte(Preface))
		c1.Write(in)
		c1.(interface{ CloseWrite() error }).CloseWrite()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the relay did not end")
		}
	})
}
