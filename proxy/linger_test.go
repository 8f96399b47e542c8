package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// A refusal made before the request body is read reaches a client that is
// still uploading as its status and message, not as "broken pipe" or
// "connection reset": docker build, docker load and docker cp send
// hundreds of MiB and read the answer only when they get to it.

// zeros is an endless body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// uploadFraming is how a test client frames its body.
type uploadFraming struct {
	name    string
	chunked bool
	expect  bool
}

var uploadFramings = []uploadFraming{
	{name: "content-length"},
	{name: "chunked", chunked: true},
	{name: "expect 100-continue", expect: true},
	{name: "chunked with expect 100-continue", chunked: true, expect: true},
}

// unixHTTPClient is net/http's client on the proxy's socket, the client
// the docker CLI and the Go SDK are built on: it writes the body while it
// waits for the answer, and returns the answer when it comes first.
func unixHTTPClient(sock string) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		ExpectContinueTimeout: 5 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: ioTimeout}, tr
}

// upload sends size bytes of body with the framing f and returns the
// answer, read whole.
func upload(t *testing.T, hc *http.Client, method, target, ctype string, size int64, f uploadFraming) (response, error) {
	t.Helper()
	req, err := http.NewRequest(method, "http://docker"+target, io.LimitReader(zeros{}, size))
	if err != nil {
		t.Fatal(err)
	}
	if f.chunked {
		req.ContentLength = 0 // a reader of unknown length: chunked
	} else {
		req.ContentLength = size
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if f.expect {
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("reading the answer: %w", err)
	}
	return response{Response: resp, body: string(b)}, nil
}

// sinkDockerd reads and drops every body and answers 200.
func sinkDockerd(t *testing.T, dir string) *fakeDockerd {
	return newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}\n")
	}))
}

func TestRefusalBeforeTheBodyReachesAnUploadingClient(t *testing.T) {
	const size = 24 << 20
	smallSpool := withLimits(Limits{MaxRequestLine: 256 << 10, MaxHeaderBytes: 1 << 20, MaxBodyBytes: 1 << 20, MaxSpoolBytes: 4 << 20})
	for _, tc := range []struct {
		name           string
		opts           []proxyOption
		refuse         func(*authz.Match, *authz.Request) bool
		upstreamDown   bool
		method, target string
		ctype          string
		status         int
		message        string
	}{
		{name: "archive upload refused by policy", refuse: refuseAction("container.archive.put"),
			method: "PUT", target: "/v1.41/containers/x/archive?path=/", ctype: "application/x-tar",
			status: 403, message: "may not endpoint container.archive.put"},
		{name: "import refused by policy", refuse: refuseAction("image.import"),
			method: "POST", target: "/v1.41/images/create?fromSrc=-&repo=x", ctype: "application/x-tar",
			status: 403, message: "may not endpoint image.import"},
		{name: "unknown endpoint",
			method: "POST", target: "/v1.41/no/such/endpoint", ctype: "application/x-tar",
			status: 403, message: "unknown endpoint"},
		{name: "path dockerd would route differently",
			method: "PUT", target: "/v1.41/containers/x%2Fy/archive?path=/", ctype: "application/x-tar",
			status: 400},
		{name: "judged body over the body limit",
			method: "POST", target: "/v1.41/containers/create", ctype: "application/json",
			status: 413, message: "larger than the limit of 2 MiB"},
		{name: "build context over the spool limit", opts: []proxyOption{smallSpool},
			method: "POST", target: "/v1.41/build", ctype: "application/x-tar",
			status: 413, message: "larger than the spool limit of 4 MiB"},
		{name: "build refused by policy after spooling", refuse: refuseAction("build.run"),
			method: "POST", target: "/v1.41/build", ctype: "application/x-tar",
			status: 403, message: "may not endpoint build.run"},
		{name: "dockerd unreachable", upstreamDown: true,
			method: "PUT", target: "/v1.41/containers/x/archive?path=/", ctype: "application/x-tar",
			status: 502, message: "cannot reach dockerd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			up := sinkDockerd(t, dir)
			if tc.upstreamDown {
				up.stop()
			}
			p := startProxy(t, dir, up.upstream(), tc.opts...)
			p.dec.setRefuse(tc.refuse)
			hc, tr := unixHTTPClient(p.sock)
			defer tr.CloseIdleConnections()
			for _, f := range uploadFramings {
				t.Run(f.name, func(t *testing.T) {
					// Several tries: a reset loses the race only now and
					// then.
					for i := range 4 {
						r, err := upload(t, hc, tc.method, tc.target, tc.ctype, size, f)
						if err != nil {
							t.Fatalf("try %d: %v", i, err)
						}
						wantDockerError(t, r, tc.status, tc.message)
					}
				})
			}
		})
	}
}

// Until the sink works again every request is refused with 503 before its
// body is read; an uploading client gets that answer too.
func TestAuditUnavailableReachesAnUploadingClient(t *testing.T) {
	dir := shortDir(t)
	up := sinkDockerd(t, dir)
	sink := &breakableSink{err: errors.New("input/output error")}
	sink.set(true)
	p := startProxy(t, dir, up.upstream(), withAudit(audit.NewLogger(sink)))
	// The first record fails to be written; from then on the sink is
	// known to be broken.
	p.dial().roundTrip("GET", pingReq)
	eventually(t, "the failed write", func() bool { return sink.failures() > 0 })
	seen := up.bytesIn.Load()
	hc, tr := unixHTTPClient(p.sock)
	defer tr.CloseIdleConnections()
	for _, f := range uploadFramings {
		r, err := upload(t, hc, "PUT", "/v1.41/containers/x/archive?path=/", "application/x-tar", 16<<20, f)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		wantDockerError(t, r, http.StatusServiceUnavailable, "audit log unavailable")
	}
	if n := up.bytesIn.Load(); n != seen {
		t.Errorf("dockerd received %d bytes", n-seen)
	}
}

// refusedUpload starts a refused archive upload on a raw connection and
// reads its answer; the body of size bytes is announced, not sent.
func refusedUpload(t *testing.T, p *testProxy, size int64) *client {
	t.Helper()
	p.dec.setRefuse(refuseAction("container.archive.put"))
	c := p.dial()
	c.send(fmt.Sprintf("PUT /v1.41/containers/x/archive?path=/ HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: %d\r\n\r\n", size))
	wantDockerError(t, c.read("PUT"), 403, "container.archive.put")
	return c
}

// A client that keeps sending after its refusal is cut off once
// lingerMaxBytes are dropped: draining cannot hold a connection slot.
func TestLingerEndsAfterItsByteBound(t *testing.T) {
	dir := shortDir(t)
	p := startProxy(t, dir, sinkDockerd(t, dir).upstream())
	c := refusedUpload(t, p, 1<<40)
	start := time.Now()
	var sent int64
	buf := make([]byte, 256<<10)
	for {
		c.c.SetWriteDeadline(time.Now().Add(ioTimeout))
		n, err := c.c.Write(buf)
		sent += int64(n)
		if err != nil {
			break
		}
		if sent > 4*lingerMaxBytes {
			t.Fatalf("still accepting after %d bytes", sent)
		}
	}
	// What the socket buffers held is on top of the bound.
	if sent < lingerMaxBytes || sent > lingerMaxBytes+16<<20 {
		t.Errorf("cut off after %d bytes, want about %d", sent, lingerMaxBytes)
	}
	if d := time.Since(start); d > lingerTimeout {
		t.Errorf("cut off after %v", d)
	}
	waitFor(t, "the connection closed", ioTimeout, func() bool { return p.srv.ActiveConns() == 0 })
}

// A client that stops sending without closing is cut off after lingerIdle.
func TestLingerEndsWhenTheClientFallsSilent(t *testing.T) {
	dir := shortDir(t)
	p := startProxy(t, dir, sinkDockerd(t, dir).upstream())
	c := refusedUpload(t, p, 1<<30)
	// The answer is followed by the end of the stream.
	c.expectEOF()
	start := time.Now()
	waitFor(t, "the connection closed", ioTimeout, func() bool { return p.srv.ActiveConns() == 0 })
	if d := time.Since(start); d > lingerIdle+time.Second {
		t.Errorf("a silent client held its connection %v", d)
	}
}

// A client that trickles bytes is cut off after lingerTimeout in all.
func TestLingerEndsAfterItsTimeBound(t *testing.T) {
	if testing.Short() {
		t.Skip("takes lingerTimeout")
	}
	dir := shortDir(t)
	p := startProxy(t, dir, sinkDockerd(t, dir).upstream())
	c := refusedUpload(t, p, 1<<30)
	start := time.Now()
	for {
		if _, err := c.c.Write([]byte("x")); err != nil {
			break
		}
		if time.Since(start) > 2*lingerTimeout {
			t.Fatal("still accepting bytes")
		}
		time.Sleep(lingerIdle / 4)
	}
	if d := time.Since(start); d < lingerTimeout-time.Second || d > lingerTimeout+2*time.Second {
		t.Errorf("cut off after %v, want about %v", d, lingerTimeout)
	}
}

// A connection that lingers after its refusal has nothing left to serve:
// Shutdown closes it at once, not at the end of the grace.
func TestShutdownClosesALingeringConnection(t *testing.T) {
	dir := shortDir(t)
	p := startProxy(t, dir, sinkDockerd(t, dir).upstream())
	c := refusedUpload(t, p, 1<<30)
	// Still sending, slowly: the linger would last lingerTimeout.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := c.c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	r := awaitShutdown(t, shutdownAsync(p, 30*time.Second))
	if r.err != nil || r.took > time.Second {
		t.Fatalf("Shutdown: %v after %v", r.err, r.took)
	}
}

// Lingering leaves no goroutine and no descriptor behind.
func TestLingerLeaksNothing(t *testing.T) {
	runtime.GC()
	baseG := runtime.NumGoroutine()
	baseFD := openFDs(t)

	dir := shortDir(t)
	up := sinkDockerd(t, dir)
	p := startProxy(t, dir, up.upstream())
	p.dec.setRefuse(refuseAction("container.archive.put", "build.run"))
	hc, tr := unixHTTPClient(p.sock)
	for _, f := range uploadFramings {
		for _, target := range []string{"PUT /v1.41/containers/x/archive?path=/", "POST /v1.41/build", "POST /v1.41/containers/create"} {
			method, target, _ := strings.Cut(target, " ")
			r, err := upload(t, hc, method, target, "application/json", 8<<20, f)
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode < 400 {
				t.Fatalf("%s: status %d", target, r.StatusCode)
			}
		}
	}
	// And one client that falls silent in the middle of its linger.
	refusedUpload(t, p, 1<<30).c.Close()
	tr.CloseIdleConnections()
	p.shutdown()
	up.stop()

	deadline := time.Now().Add(5 * time.Second)
	for {
		g, fd := runtime.NumGoroutine(), openFDs(t)
		if g <= baseG && fd <= baseFD {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines (%d before), %d descriptors (%d before):\n%s", g, baseG, fd, baseFD, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// The answer's end is visible to a client before it stops sending: the
// write side is half-closed after the refusal.
func TestRefusalIsFollowedByEOF(t *testing.T) {
	dir := shortDir(t)
	p := startProxy(t, dir, sinkDockerd(t, dir).upstream())
	c := refusedUpload(t, p, 1<<30)
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(c.br)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(lingerIdle / 2):
		t.Fatal("no EOF after the refusal")
	}
	// The connection still takes the body meanwhile.
	if _, err := c.c.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("writing the body after the refusal: %v", err)
	}
}
