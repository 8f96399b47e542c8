package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	attachUpgrade = "POST /v1.41/containers/x/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	head101       = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
)

// sessionResult is what a fake dockerd session read from the client.
type sessionResult struct {
	head  string
	stdin string
}

// The whole attach flow: dockerd's first output arrives in the same write
// as its 101; stdin sent with the request head arrives; stdin EOF reaches
// dockerd while output keeps flowing after it; dockerd's close reaches the
// client as EOF.
func TestUpgradeSplicesBothWaysWithHalfClose(t *testing.T) {
	dir := shortDir(t)
	got := make(chan sessionResult, 1)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		head, err := readHeadRaw(br)
		if err != nil {
			return
		}
		// Output buffered right behind the head must not be lost.
		io.WriteString(c, head101+"early output\n")
		stdin, err := io.ReadAll(br) // until the client's EOF
		if err != nil {
			t.Errorf("dockerd reading stdin: %v", err)
		}
		got <- sessionResult{head, string(stdin)}
		// The container still talks after stdin closed.
		io.WriteString(c, "after eof: "+string(stdin))
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send(attachUpgrade + "stdin sent with the head\n")
	resp := c.readHead("POST")
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want(t, "Upgrade", resp.Header.Get("Upgrade"), "tcp")
	want(t, "Connection", resp.Header.Get("Connection"), "Upgrade")
	early := make([]byte, len("early output\n"))
	if _, err := io.ReadFull(c.br, early); err != nil {
		t.Fatalf("output sent with the 101 lost: %v", err)
	}
	want(t, "early output", string(early), "early output\n")

	c.send("more stdin\n")
	if err := c.c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var res sessionResult
	select {
	case res = <-got:
	case <-time.After(ioTimeout):
		t.Fatal("stdin EOF never reached dockerd")
	}
	want(t, "stdin", res.stdin, "stdin sent with the head\nmore stdin\n")
	if !strings.Contains(res.head, "Upgrade: tcp\r\n") || !strings.Contains(res.head, "Connection: Upgrade\r\n") {
		t.Errorf("forwarded head %q lost the upgrade", res.head)
	}
	rest, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatalf("after dockerd closed: %v", err)
	}
	want(t, "output after stdin EOF", string(rest), "after eof: "+res.stdin)

	recs := p.finalRecords()
	if len(recs) != 2 || recs[0].Phase != "start" || !recs[0].Hijacked || recs[1].Phase != "" || !recs[1].Hijacked {
		t.Fatalf("records %+v, want a hijacked start record and a final one", recs)
	}
	want(t, "status", recs[1].Status, 101)
	want(t, "bytes_in", recs[1].BytesIn, int64(len(res.stdin)))
	want(t, "bytes_out", recs[1].BytesOut, int64(len("early output\n")+len(rest)))
}

// dockerd ends the session on its own (the container exits): the client
// reads the last output and then EOF, without closing anything itself.
func TestUpstreamCloseReachesTheClientAsEOF(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHeadRaw(br); err != nil {
			return
		}
		io.WriteString(c, head101)
		io.WriteString(c, "bye\n")
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send(attachUpgrade)
	if r := c.readHead("POST"); r.StatusCode != 101 {
		t.Fatalf("status %d", r.StatusCode)
	}
	c.c.SetReadDeadline(time.Now().Add(hijackGrace / 2))
	out, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatalf("no EOF after dockerd closed: %v (read %q)", err, out)
	}
	want(t, "output", string(out), "bye\n")
}

// Old clients attach without Upgrade: dockerd answers 200 with a raw-stream
// media type and the connection is raw from there, both ways.
func TestRawStreamAttachIsHijacked(t *testing.T) {
	for _, tc := range []struct{ name, req, contentType string }{
		{"attach raw-stream", "POST /containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n\r\n", "application/vnd.docker.raw-stream"},
		{"exec start multiplexed-stream", "POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", "application/vnd.docker.multiplexed-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequestRaw(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: "+tc.contentType+"\r\n\r\n")
				io.Copy(c, br) // echo until stdin EOF
			})
			p := startProxy(t, dir, up.upstream())
			c := p.dial()
			c.send(tc.req)
			resp := c.readHead("POST")
			if resp.StatusCode != 200 || resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 {
				t.Fatalf("status %d length %d encoding %v", resp.StatusCode, resp.ContentLength, resp.TransferEncoding)
			}
			c.send("echo me\n")
			c.c.CloseWrite()
			out, err := io.ReadAll(c.br)
			if err != nil {
				t.Fatal(err)
			}
			want(t, "echo", string(out), "echo me\n")
			recs := p.finalRecords()
			if len(recs) != 2 || recs[0].Phase != "start" || !recs[1].Hijacked {
				t.Errorf("records %+v", recs)
			}
		})
	}
}

// The same media type on a route that does not hijack (logs) is an HTTP
// answer: it is copied with its framing and the connection stays HTTP.
func TestRawStreamLogsAnswerStaysHTTP(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			io.WriteString(w, "OK")
			return
		}
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
		io.WriteString(w, "log line\n")
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	r := c.roundTrip("GET", "GET /containers/x/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
	want(t, "logs", r.body, "log line\n")
	if r := c.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"); r.body != "OK" {
		t.Fatalf("next request: %d %q", r.StatusCode, r.body)
	}
	for _, rec := range finals(p.finalRecords()) {
		if rec.Hijacked {
			t.Errorf("%s recorded as hijacked", rec.Path)
		}
	}
}

// A request that asks for an upgrade and is refused by dockerd stays HTTP:
// the next request on the connection is read, decided and forwarded.
func TestUpgradeAnsweredWithAnErrorStaysHTTP(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequestRaw(br)
			if err != nil {
				return
			}
			if strings.Contains(req.URL.Path, "/attach") {
				msg := `{"message":"No such container: x"}`
				io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(msg))+"\r\n\r\n"+msg)
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
		}
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	// The next request rides right behind the upgrade request; raw
	// splicing would send it to dockerd undecided.
	c.send(attachUpgrade + "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	r := c.read("POST")
	if r.StatusCode != 404 || !strings.Contains(r.body, "No such container") {
		t.Fatalf("answer %d %q", r.StatusCode, r.body)
	}
	if r := c.read("GET"); r.StatusCode != 200 || r.body != "OK" {
		t.Fatalf("next request: %d %q", r.StatusCode, r.body)
	}
	if n := p.dec.count(); n != 2 {
		t.Errorf("%d decisions, want 2", n)
	}
	for _, rec := range p.finalRecords() {
		if rec.Hijacked || rec.Phase != "" {
			t.Errorf("record %+v", rec.Record)
		}
	}
}

// A refused upgrade is never forwarded and never spliced.
func TestRefusedUpgradeIsNotForwarded(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	p.dec.setRefuse(refuseAction("container.attach"))
	c := p.dial()
	c.send(attachUpgrade + "raw bytes that must not reach dockerd")
	r := c.read("POST")
	wantDockerError(t, r, 403)
	if !r.Close {
		t.Error("connection kept after a refused upgrade")
	}
	c.expectEOF()
	if n := up.bytesIn.Load(); n != 0 {
		t.Errorf("dockerd read %d bytes", n)
	}
}

// dockerd answering 101 to a request that did not ask for it is not a
// reason to splice.
func TestUnaskedSwitchIsRefused(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequestRaw(br); err != nil {
			return
		}
		io.WriteString(c, head101+"raw")
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	wantDockerError(t, c.roundTrip("POST", "POST /containers/x/attach HTTP/1.1\r\nHost: docker\r\n\r\n"), 502, "switched protocols")
	c.expectEOF()
}

// BuildKit's /session and /grpc are h2c upgrades: allowed, they pass
// through as a 101 and then HTTP/2 frames, byte for byte, whichever side
// speaks first (dockerd on /session, the client on /grpc).
func TestH2CUpgradesPassThroughWhenAllowed(t *testing.T) {
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	const settings = "\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64" // MAX_CONCURRENT_STREAMS 100
	for _, tc := range []struct {
		path, action string
		dockerdFirst bool
	}{
		{"/session", "session.start", true},
		{"/v1.41/grpc", "grpc.start", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			dir := shortDir(t)
			heads := make(chan string, 1)
			up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
				head, err := readHeadRaw(br)
				if err != nil {
					return
				}
				heads <- head
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
				if tc.dockerdFirst {
					io.WriteString(c, preface+settings)
				} else if _, err := io.ReadFull(br, make([]byte, len(preface))); err != nil {
					return
				}
				io.Copy(c, br) // frames back as they come
			})
			p := startProxy(t, dir, up.upstream())
			c := p.dial()
			c.send("POST " + tc.path + " HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nX-Docker-Expose-Session-Uuid: s1\r\nX-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy\r\n\r\n")
			resp := c.readHead("POST")
			if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "h2c" {
				t.Fatalf("status %d upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
			}
			head := <-heads
			for _, h := range []string{"Upgrade: h2c\r\n", "Connection: Upgrade\r\n", "X-Docker-Expose-Session-Uuid: s1\r\n", "X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy\r\n"} {
				if !strings.Contains(head, h) {
					t.Errorf("forwarded head %q lacks %q", head, h)
				}
			}
			wantBack := settings
			if tc.dockerdFirst {
				wantBack = preface + settings + settings
				c.send(settings)
			} else {
				c.send(preface + settings)
			}
			c.c.CloseWrite()
			out, err := io.ReadAll(c.br)
			if err != nil {
				t.Fatal(err)
			}
			want(t, "h2 bytes back", string(out), wantBack)
			recs := p.finalRecords()
			want(t, "action", recs[len(recs)-1].Action, tc.action)
			want(t, "hijacked", recs[len(recs)-1].Hijacked, true)
		})
	}
}
