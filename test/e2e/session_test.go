package e2e

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// http2Preface is what an HTTP/2 client sends first (RFC 9113 §3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// TestSessionUpgradePassesThroughAsH2C checks BuildKit's session endpoint:
// after dockerd's 101 it is dockerd that speaks HTTP/2 first, as a client,
// so its preface must reach us through dockgate untouched.
func TestSessionUpgradePassesThroughAsH2C(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		c, ctx := s.sdk()
		conn, err := c.DialHijack(ctx, "/session", "h2c", map[string][]string{
			"X-Docker-Expose-Session-Uuid":      {"dockgate-e2e-" + s.side.name},
			"X-Docker-Expose-Session-Name":      {"e2e"},
			"X-Docker-Expose-Session-Sharedkey": {"k"},
		})
		if err != nil {
			s.t.Fatalf("%s: /session upgrade: %v", s.side.name, err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(http2Preface))
		if _, err := io.ReadFull(conn, got); err != nil {
			s.t.Fatalf("%s: reading dockerd's HTTP/2 preface: %v", s.side.name, err)
		}
		s.note("session preface", string(got))
		if string(got) != http2Preface {
			s.t.Errorf("%s: got %q, want the HTTP/2 preface", s.side.name, got)
		}
		s.expect(self(), "POST /session 101 hijacked")
	})
}

// TestGRPCUpgradePassesThroughAsH2C checks BuildKit's control API: after the
// 101 we are the HTTP/2 client, and dockerd must answer our preface with
// its SETTINGS frame.
func TestGRPCUpgradePassesThroughAsH2C(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		c, ctx := s.sdk()
		conn, err := c.DialHijack(ctx, "/grpc", "h2c", nil)
		if err != nil {
			s.t.Fatalf("%s: /grpc upgrade: %v", s.side.name, err)
		}
		defer conn.Close()
		// The preface and an empty SETTINGS frame (length 0, type 4).
		hello := append([]byte(http2Preface), 0, 0, 0, 4, 0, 0, 0, 0, 0)
		if _, err := conn.Write(hello); err != nil {
			s.t.Fatalf("%s: writing the HTTP/2 preface: %v", s.side.name, err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		frame := make([]byte, 9)
		if _, err := io.ReadFull(conn, frame); err != nil {
			s.t.Fatalf("%s: reading dockerd's first HTTP/2 frame: %v", s.side.name, err)
		}
		s.note("grpc first frame type", string(rune('0'+frame[3])))
		if frame[3] != 4 || !bytes.Equal(frame[5:9], []byte{0, 0, 0, 0}) {
			s.t.Errorf("%s: first frame header %x, want a SETTINGS frame on stream 0", s.side.name, frame)
		}
		s.expect(self(), "POST /grpc 101 hijacked")
	})
}
