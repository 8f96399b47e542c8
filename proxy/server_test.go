package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/authz"
)

func TestEveryRequestOnAKeepAliveConnectionIsDecided(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	targets := []string{"/_ping", "/v1.41/containers/json?all=1", "/v1.41/info"}
	for i, target := range targets {
		r := c.roundTrip("GET", "GET "+target+" HTTP/1.1\r\nHost: docker\r\n\r\n")
		if r.StatusCode != 200 {
			t.Fatalf("request %d: status %d %q", i, r.StatusCode, r.body)
		}
		if got := p.dec.count(); got != i+1 {
			t.Fatalf("after request %d the decider was asked %d times", i+1, got)
		}
	}
	if up.conns.Load() != 1 {
		t.Errorf("dockerd saw %d connections, want the one paired with the client", up.conns.Load())
	}
	recs := p.finalRecords()
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want 3", len(recs))
	}
	for i, r := range recs {
		want(t, "path", r.Path, targets[i])
		want(t, "decision", r.Decision, "allow")
	}
	want(t, "actions", recs[0].Action+","+recs[1].Action+","+recs[2].Action, "system.ping,container.list,system.info")
}

func TestPipelinedRequestsAreEachDecidedAndAnsweredInOrder(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	p.dec.setRefuse(refuseAction("container.list"))
	c := p.dial()
	c.send("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n" +
		"POST /v1.41/containers/x/start HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n" +
		"GET /containers/json HTTP/1.1\r\nHost: docker\r\n\r\n" +
		"POST /build?t=a HTTP/1.1\r\nHost: docker\r\nContent-Length: 4\r\n\r\ntar!" +
		"GET /version HTTP/1.1\r\nHost: docker\r\n\r\n")
	r := c.read("GET")
	want(t, "1st", r.body, "OK")
	r = c.read("POST")
	if !strings.Contains(r.body, `"path":"/v1.41/containers/x/start"`) {
		t.Errorf("2nd answer %q", r.body)
	}
	wantDockerError(t, c.read("GET"), 403, "container.list")
	r = c.read("POST")
	if !strings.Contains(r.body, `"body":"tar!"`) {
		t.Errorf("4th answer %q", r.body)
	}
	r = c.read("GET")
	if !strings.Contains(r.body, `"path":"/version"`) {
		t.Errorf("5th answer %q", r.body)
	}
	var actions []string
	for _, d := range p.dec.all() {
		actions = append(actions, d.Action)
	}
	want(t, "decided", strings.Join(actions, ","), "system.ping,container.start,container.list,build.run,system.version")
	if n := len(finals(p.finalRecords())); n != 5 {
		t.Errorf("%d final audit records, want 5", n)
	}
}

func TestRefusedRequestOnAKeepAliveConnectionIsFollowedByAnAllowedOne(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	p.dec.setRefuse(refuseAction("container.create", "container.kill", "build.run"))
	for _, tc := range []struct {
		name, refused string
	}{
		{"refused without a body", "POST /containers/x/kill HTTP/1.1\r\nHost: docker\r\n\r\n"},
		{"refused after its body was read to be judged", "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"Image\":\"busybox:latest\"}\n"},
		{"refused after its chunked body was read to be judged", "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1b\r\n{\"Image\":\"busybox:latest\"}\n\r\n0\r\n\r\n"},
		{"refused with a small streamed body left unread", "POST /build HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\n\r\nhello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.bytesIn.Load()
			c := p.dial()
			// The refused request and the next one in one write: the
			// next must be read from where the refused one ends.
			c.send(tc.refused + "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
			r := c.read("POST")
			wantDockerError(t, r, 403, "no rule allows it")
			if r.Close {
				t.Errorf("refusal closes the connection")
			}
			r = c.read("GET")
			if r.StatusCode != 200 || r.body != "OK" {
				t.Fatalf("next request: %d %q", r.StatusCode, r.body)
			}
			if got := up.bytesIn.Load() - before; got != int64(len("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")) {
				t.Errorf("dockerd read %d bytes, want only the ping", got)
			}
		})
	}
}

func TestUnknownEndpointIsRefusedAndNotForwarded(t *testing.T) {
	for _, allowUnknown := range []bool{false, true} {
		name := "decider refuses unknown"
		if allowUnknown {
			name = "even when the decider allows everything"
		}
		t.Run(name, func(t *testing.T) {
			dir := shortDir(t)
			up := newHTTPDockerd(t, dir, pingHandler())
			p := startProxy(t, dir, up.upstream())
			p.dec.allowUnknown = allowUnknown
			c := p.dial()
			for _, req := range []string{
				"GET /v1.41/no/such/endpoint HTTP/1.1\r\nHost: docker\r\n\r\n",
				"BREW /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
				"GET /containers/create HTTP/1.1\r\nHost: docker\r\n\r\n",
			} {
				wantDockerError(t, c.roundTrip("GET", req), 403)
			}
			if n := up.bytesIn.Load(); n != 0 {
				t.Errorf("dockerd read %d bytes", n)
			}
			recs := p.finalRecords()
			if len(recs) != 3 {
				t.Fatalf("%d records, want 3", len(recs))
			}
			for _, r := range recs {
				want(t, "action", r.Action, authz.ActionUnknown)
				want(t, "status", r.Status, 403)
				want(t, "decision", r.Decision, "deny")
			}
		})
	}
}

func TestBadInputIsRefusedAndNeverForwarded(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream(), withLimits(testLimits))
	sent := 0
	for _, tc := range badHeads {
		if tc.raw == http2Preface {
			continue // answered in HTTP/2: http2_test.go
		}
		sent++
		t.Run(tc.name, func(t *testing.T) {
			before := len(p.records())
			c := p.dial()
			// The proxy may stop reading before all is sent (limits).
			go func() {
				io.WriteString(c.c, tc.raw)
				if tc.cut {
					c.c.CloseWrite()
				}
			}()
			resp, err := http.ReadResponse(c.br, nil)
			switch {
			case err != nil && tc.cut && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
				// A client that stopped mid-head may get no answer, but
				// it is on record (below).
			case err != nil:
				t.Fatalf("no answer: %v", err)
			default:
				body, _ := io.ReadAll(resp.Body)
				wantDockerError(t, response{resp, string(body)}, tc.status, tc.msg)
				if !resp.Close {
					t.Error("a malformed request does not close the connection")
				}
				c.expectEOF()
			}
			recs := p.waitRecords(before + 1)
			r := recs[len(recs)-1]
			want(t, "decision", r.Decision, "error")
			want(t, "status", r.Status, tc.status)
			want(t, "action", r.Action, authz.ActionUnknown)
			if r.Reason == "" || r.RequestID == "" || r.Caller == nil {
				t.Errorf("record lacks reason, request_id or caller: %+v", r.Record)
			}
		})
	}
	if n := up.bytesIn.Load(); n != 0 {
		t.Errorf("dockerd read %d bytes of bad input", n)
	}
	if n := p.dec.count(); n != 0 {
		t.Errorf("the decider was asked %d times about bad input", n)
	}
	if n := len(p.finalRecords()); n != sent {
		t.Errorf("%d records for %d bad requests", n, sent)
	}
}

func TestSlowRequestHeadGets408(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream(), withHeaderTimeout(200*time.Millisecond))
	c := p.dial()
	c.send("GET /_ping HTTP/1.1\r\nHost: do")
	wantDockerError(t, c.read("GET"), 408)
	recs := p.finalRecords()
	if len(recs) != 1 || recs[0].Status != 408 || recs[0].Decision != "error" {
		t.Errorf("records %+v", recs)
	}
}

func TestUpstreamAbsentGives502AndRecoversWithoutRestart(t *testing.T) {
	dir := shortDir(t)
	up := &fakeDockerd{t: t, path: dir + "/dockerd.sock", handler: pingHandler()}
	p := startProxy(t, dir, up.upstream())
	ping := "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"

	c := p.dial()
	r := c.roundTrip("GET", ping)
	wantDockerError(t, r, 502, "unix://"+up.path)
	if r.Close {
		t.Error("502 closes a connection that can carry the next request")
	}

	up.start()
	if r := c.roundTrip("GET", ping); r.StatusCode != 200 {
		t.Fatalf("same connection after dockerd is back: %d %q", r.StatusCode, r.body)
	}
	if r := p.dial().roundTrip("GET", ping); r.StatusCode != 200 {
		t.Fatalf("new connection after dockerd is back: %d %q", r.StatusCode, r.body)
	}
	p.waitRecords(3) // records are written after the answer

	// dockerd restarts while the client's connection is idle.
	up.stop()
	wantDockerError(t, c.roundTrip("GET", ping), 502, "unix://"+up.path)
	p.waitRecords(4)
	up.start()
	if r := c.roundTrip("GET", ping); r.StatusCode != 200 {
		t.Fatalf("same connection after a restart: %d %q", r.StatusCode, r.body)
	}

	var statuses []int
	for _, r := range p.finalRecords() {
		statuses = append(statuses, r.Status)
	}
	want(t, "statuses", fmt.Sprint(statuses), "[502 200 200 502 200]")
}

func TestUpstreamGoneWithABodyClosesTheConnection(t *testing.T) {
	dir := shortDir(t)
	p := startProxy(t, dir, Upstream{URL: "unix://" + dir + "/nothing.sock", Network: "unix", Address: dir + "/nothing.sock"})
	c := p.dial()
	c.send("PUT /containers/x/archive?path=/ HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\n\r\nhello")
	r := c.read("PUT")
	wantDockerError(t, r, 502)
	if !r.Close {
		t.Error("connection kept although the body was never read")
	}
	c.expectEOF()
}

func TestUnidentifiedCallerIsRefused(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream(), withIdentify(func(net.Conn) (*Caller, error) {
		return nil, fmt.Errorf("no peer credentials")
	}))
	c := p.dial()
	// The refusal comes at once, before any request is read.
	go io.WriteString(c.c, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	wantDockerError(t, c.read("GET"), 403, "cannot identify caller")
	c.expectEOF()
	if up.bytesIn.Load() != 0 || p.dec.count() != 0 {
		t.Error("an unidentified request reached the decider or dockerd")
	}
}

// After every client is gone and Serve's context ends, the proxy holds no
// goroutine: not for idle keep-alive pairs, not for a stream, not for a
// hijacked session on which dockerd stays silent.
func TestNoGoroutineLeak(t *testing.T) {
	runtime.GC()
	base := runtime.NumGoroutine()

	dir := shortDir(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequestRaw(br)
			if err != nil {
				return
			}
			switch {
			case strings.Contains(req.URL.Path, "/attach"):
				io.WriteString(c, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
				// A session that says nothing, whatever the client does.
				<-release
				return
			case strings.HasSuffix(req.URL.Path, "/events"):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
				<-release
				return
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
			}
		}
	})
	p := startProxy(t, dir, up.upstream())

	idle := p.dial()
	idle.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	stream := p.dial()
	stream.send("GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
	stream.readHead("GET")
	hijacked := p.dial()
	hijacked.send("POST /containers/x/attach?stream=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	hijacked.readHead("POST")
	leftHijacked := p.dial()
	leftHijacked.send("POST /containers/y/attach?stream=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	leftHijacked.readHead("POST")
	bad := p.dial()
	bad.send("garbage\r\n\r\n")
	bad.read("GET")
	pipelined := p.dial()
	pipelined.send("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\nGET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	pipelined.read("GET")
	pipelined.read("GET")
	waitFor(t, "five connections served", ioTimeout, func() bool { return p.srv.ActiveConns() == 5 })

	// Every client leaves; one hijacked session is left by its client
	// but dockerd keeps it open.
	for _, c := range []*client{idle, stream, leftHijacked, bad, pipelined} {
		c.c.Close()
	}
	hijacked.c.CloseWrite()
	p.shutdown()
	if n := p.srv.ActiveConns(); n != 0 {
		t.Errorf("%d connections still tracked after Serve returned", n)
	}
	hijacked.c.Close()
	releaseAll()
	up.stop()

	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
