package proxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// h2cClient speaks HTTP/2 with prior knowledge over the proxy's socket,
// as an HTTP/2 client of dockerd 29's socket does.
func h2cClient(sock string) *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}, Timeout: ioTimeout}
}

// TestHTTP2PriorKnowledgeIsRefusedInHTTP2: dockgate judges HTTP/1.1 only,
// and an h2c client must be told so in a protocol it reads, with the
// caller and the request named; nothing reaches dockerd, and the refusal
// is on record with the stream's method and path.
func TestHTTP2PriorKnowledgeIsRefusedInHTTP2(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, contentType string
		body                            string
		grpc                            bool
	}{
		{"Docker API request", "GET", "/v1.53/containers/json", "", "", false},
		// The answer comes while the client still sends: it must read it,
		// not a broken pipe.
		{"Docker API request with a body beyond the flow-control window", "POST", "/v1.53/containers/create", "application/json",
			`{"Image":"busybox","Labels":{"pad":"` + strings.Repeat("x", 100<<10) + `"}}`, false},
		{"gRPC call", "POST", "/moby.buildkit.v1.Control/Solve", "application/grpc", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			up := newHTTPDockerd(t, dir, pingHandler())
			p := startProxy(t, dir, up.upstream())
			req, err := http.NewRequest(tc.method, "http://docker"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := h2cClient(p.sock).Do(req)
			if err != nil {
				t.Fatalf("HTTP/2 request: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "dockgate: user:tester may not " + tc.method + " " + tc.path + " over HTTP/2"
			if tc.grpc {
				// trailers-only: grpc-status in the headers
				if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "7" || !strings.HasPrefix(resp.Header.Get("Grpc-Message"), want) {
					t.Fatalf("status %d, grpc-status %q, grpc-message %q; want 7 and %q", resp.StatusCode, resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"), want)
				}
			} else {
				var e struct{ Message string }
				if resp.StatusCode != 403 || json.Unmarshal(body, &e) != nil || !strings.HasPrefix(e.Message, want) {
					t.Fatalf("status %d, body %q; want 403 and %q", resp.StatusCode, body, want)
				}
			}
			if n := up.bytesIn.Load(); n != 0 {
				t.Errorf("dockerd got %d bytes", n)
			}
			recs := p.finalRecords()
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1: %+v", len(recs), recs)
			}
			r := recs[0]
			if r.Method != tc.method || r.Path != tc.path || r.Status != 403 || r.Decision != "error" || !strings.HasPrefix("dockgate: "+r.Reason, want) {
				t.Errorf("record %+v", r.Record)
			}
		})
	}
}

// TestHTTP2PrefaceAloneIsRecorded: a client that sends the preface and
// goes is on record, and does not hold the connection.
func TestHTTP2PrefaceAloneIsRecorded(t *testing.T) {
	dir := t.TempDir()
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	c.c.CloseWrite()
	out, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatal(err)
	}
	// The server's SETTINGS frame: 9 bytes, type 4.
	if len(out) < 9 || out[3] != 0x4 {
		t.Errorf("got %q, want an HTTP/2 SETTINGS frame", out)
	}
	recs := p.finalRecords()
	if len(recs) != 1 || recs[0].Method != "PRI" || recs[0].Status != 400 || !strings.Contains(recs[0].Reason, "before its first request") {
		t.Errorf("records %+v", recs)
	}
}

// brConn reads what the test client's bufio.Reader holds first.
type brConn struct {
	net.Conn
	r io.Reader
}

func (c brConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestRefusedGRPCUpgradeAnswersInGRPC: a refused h2c upgrade to /grpc
// (buildx's docker driver) is answered with 101 and each gRPC call on it
// with PERMISSION_DENIED and the refusal, so that buildx prints it instead
// of falling back to another driver; dockerd gets nothing. A refused
// /session upgrade is still a plain 403.
func TestRefusedGRPCUpgradeAnswersInGRPC(t *testing.T) {
	dir := t.TempDir()
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	p.dec.setRefuse(refuseAction("grpc.start", "session.start"))

	c := p.dial()
	c.send("POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	resp := c.readHead("POST")
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "h2c" {
		t.Fatalf("status %d upgrade %q, want 101 h2c", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	cc, err := (&http2.Transport{AllowHTTP: true}).NewClientConn(brConn{c.c, c.br})
	if err != nil {
		t.Fatal(err)
	}
	const want = "dockgate: user:tester may not endpoint grpc.start: no rule allows it"
	for i := range 2 {
		req, _ := http.NewRequest("POST", "http://docker/moby.buildkit.v1.Control/ListWorkers", strings.NewReader(""))
		req.Header.Set("Content-Type", "application/grpc")
		r, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		r.Body.Close()
		if r.Header.Get("Grpc-Status") != "7" || r.Header.Get("Grpc-Message") != want {
			t.Errorf("call %d: grpc-status %q grpc-message %q, want 7 %q", i, r.Header.Get("Grpc-Status"), r.Header.Get("Grpc-Message"), want)
		}
	}
	cc.Close()

	s := p.dial()
	s.send("POST /session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	if r := s.readHead("POST"); r.StatusCode != 403 {
		t.Errorf("refused /session: status %d, want 403", r.StatusCode)
	}
	if n := up.bytesIn.Load(); n != 0 {
		t.Errorf("dockerd got %d bytes", n)
	}
	recs := p.finalRecords()
	if len(recs) != 2 || recs[0].Action != "grpc.start" || recs[0].Decision != "deny" || recs[0].Status != 403 || recs[1].Action != "session.start" {
		t.Errorf("records %+v", recs)
	}
}
