package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// readHeadRaw reads a request head from a raw connection as the bytes sent.
func readHeadRaw(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// seenRequest is a request as the recording dockerd read it: the head as
// sent, the body decoded.
type seenRequest struct {
	head string
	body string
}

// newRecordingDockerd answers every request 200 after reading its body as
// framed, and reports each one.
func newRecordingDockerd(t *testing.T, dir string) (*fakeDockerd, chan seenRequest) {
	seen := make(chan seenRequest, 16)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			head, err := readHeadRaw(br)
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				t.Errorf("dockerd cannot read the forwarded head %q: %v", head, err)
				return
			}
			var body []byte
			switch {
			case len(req.TransferEncoding) > 0:
				body, err = io.ReadAll(newChunkedReader(br))
				if err != nil {
					t.Errorf("dockerd reads a broken chunked body: %v", err)
					return
				}
			case req.ContentLength > 0:
				body = make([]byte, req.ContentLength)
				if _, err := io.ReadFull(br, body); err != nil {
					return
				}
			}
			seen <- seenRequest{head: head, body: string(body)}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		}
	})
	return up, seen
}

func nextSeen(t *testing.T, seen chan seenRequest) seenRequest {
	t.Helper()
	select {
	case s := <-seen:
		return s
	case <-time.After(ioTimeout):
		t.Fatal("dockerd saw no request")
		return seenRequest{}
	}
}

func noMoreSeen(t *testing.T, seen chan seenRequest) {
	t.Helper()
	select {
	case s := <-seen:
		t.Fatalf("dockerd saw another request: %q %q", s.head, s.body)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestChunkedBodyIsForwardedDecodedAndRechunked(t *testing.T) {
	dir := shortDir(t)
	var got string
	done := make(chan struct{})
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		defer close(done)
		head, err := readHeadRaw(br)
		if err != nil {
			t.Error(err)
			return
		}
		if !strings.Contains(head, "Transfer-Encoding: chunked\r\n") || strings.Contains(head, "Content-Length") {
			t.Errorf("forwarded head %q is not chunked", head)
		}
		// Read the body with our strict decoder: the re-chunked form must
		// pass it, so dockerd's more lenient one reads the same.
		var raw strings.Builder
		b, err := io.ReadAll(newChunkedReader(bufio.NewReader(io.TeeReader(br, &raw))))
		if err != nil {
			t.Errorf("re-chunked body does not decode: %v", err)
		}
		if strings.Contains(raw.String(), ";ext") || strings.Contains(raw.String(), "X-Trailer") {
			t.Errorf("extensions or trailers forwarded: %q", raw.String())
		}
		got = string(b)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	body := "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
	// An archive upload streams (build contexts and loads are spooled).
	r := c.roundTrip("PUT", "PUT /containers/x/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	<-done
	want(t, "body dockerd read", got, "hello world")
	recs := p.finalRecords()
	want(t, "bytes_in", finals(recs)[0].BytesIn, int64(11))
}

func TestJudgedBodyIsForwardedWithContentLength(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	create := `{"Image":"busybox","Cmd":["true"]}`
	for _, tc := range []struct{ name, req string }{
		{"Content-Length body", "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(create)) + "\r\n\r\n" + create},
		{"chunked body", "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + "3\r\n" + create[:3] + "\r\n" + strconv.FormatInt(int64(len(create)-3), 16) + "\r\n" + create[3:] + "\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := c.roundTrip("POST", tc.req); r.StatusCode != 200 {
				t.Fatalf("status %d %q", r.StatusCode, r.body)
			}
			s := nextSeen(t, seen)
			if !strings.Contains(s.head, "Content-Length: "+strconv.Itoa(len(create))+"\r\n") || strings.Contains(s.head, "Transfer-Encoding") {
				t.Errorf("forwarded head %q", s.head)
			}
			want(t, "forwarded body", s.body, create)
			ds := p.dec.all()
			want(t, "judged body", string(ds[len(ds)-1].Body), create)
		})
	}
}

func TestContentLengthBodyIsStreamed(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	tar := strings.Repeat("t", 100000)
	r := c.roundTrip("PUT", "PUT /containers/x/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: 100000\r\n\r\n"+tar)
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	s := nextSeen(t, seen)
	if !strings.Contains(s.head, "Content-Length: 100000\r\n") {
		t.Errorf("forwarded head %q", s.head)
	}
	if s.body != tar {
		t.Errorf("forwarded %d bytes, want the 100000 sent", len(s.body))
	}
	if ds := p.dec.all(); ds[0].Body != nil {
		t.Error("a streamed body was read to be judged")
	}
	recs := finals(p.finalRecords())
	want(t, "bytes_in", recs[0].BytesIn, int64(100000))
	want(t, "bytes_out", recs[0].BytesOut, int64(2))
}

// CVE-2024-41110: "Content-Length: 0" followed by what looks like a chunked
// body. The body is empty; the bytes after it are the next request, read and
// refused as such, never forwarded as a body.
func TestZeroContentLengthWithChunkedDataIsNotABody(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	smuggled := `{"Image":"busybox","HostConfig":{"Privileged":true}}`
	c.send("POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n" +
		strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n")
	if r := c.read("POST"); r.StatusCode != 200 {
		t.Fatalf("create: %d %q", r.StatusCode, r.body)
	}
	s := nextSeen(t, seen)
	if !strings.Contains(s.head, "Content-Length: 0\r\n") || strings.Contains(s.head, "Transfer-Encoding") {
		t.Errorf("forwarded head %q", s.head)
	}
	want(t, "forwarded body", s.body, "")
	want(t, "judged body", string(p.dec.all()[0].Body), "")
	// The chunk is read as the next request line and refused.
	wantDockerError(t, c.read("GET"), 400, "malformed request line")
	c.expectEOF()
	noMoreSeen(t, seen)
	recs := p.finalRecords()
	if len(recs) != 2 || recs[1].Decision != "error" || recs[1].Status != 400 {
		t.Errorf("records %+v", recs)
	}
}

// A route whose body streams: dockgate answers "100 Continue" only once the
// request is allowed, and a refused one gets its 403 and no 100.
func TestExpectContinueComesAfterTheDecision(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	p := startProxy(t, dir, up.upstream())
	head := "PUT /containers/x/archive?path=/ HTTP/1.1\r\nHost: docker\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"

	t.Run("allowed", func(t *testing.T) {
		c := p.dial()
		c.send(head)
		r := c.readHead("PUT")
		if r.StatusCode != 100 {
			t.Fatalf("status %d, want 100", r.StatusCode)
		}
		if p.dec.count() != 1 {
			t.Errorf("100 Continue sent before the decision")
		}
		c.send("hello")
		if r := c.read("PUT"); r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		s := nextSeen(t, seen)
		want(t, "body", s.body, "hello")
		if strings.Contains(s.head, "Expect") {
			t.Errorf("Expect forwarded: %q", s.head)
		}
	})
	t.Run("refused", func(t *testing.T) {
		p.dec.setRefuse(refuseAction("container.archive.put"))
		defer p.dec.setRefuse(nil)
		c := p.dial()
		c.send(head)
		wantDockerError(t, c.read("PUT"), 403)
		noMoreSeen(t, seen)
	})
	t.Run("refused, body sent without waiting, is not read as a request", func(t *testing.T) {
		p.dec.setRefuse(refuseAction("container.archive.put"))
		defer p.dec.setRefuse(nil)
		before := p.dec.count()
		c := p.dial()
		// RFC 9110 §10.1.1: a client may send the body without waiting
		// for 100. That body must not become a request of its own.
		c.send(strings.Replace(head, "Content-Length: 5", "Content-Length: 37", 1) + "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
		r := c.read("PUT")
		wantDockerError(t, r, 403)
		if !r.Close {
			t.Error("connection kept although the body may still come")
		}
		c.expectEOF()
		if n := p.dec.count() - before; n != 1 {
			t.Errorf("%d decisions, want 1: the body was read as a request", n)
		}
	})
	t.Run("judged body: 100 before reading it", func(t *testing.T) {
		c := p.dial()
		c.send("POST /containers/create HTTP/1.1\r\nHost: docker\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
		if r := c.readHead("POST"); r.StatusCode != 100 {
			t.Fatalf("status %d, want 100", r.StatusCode)
		}
		c.send("{}")
		if r := c.read("POST"); r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		want(t, "body", nextSeen(t, seen).body, "{}")
	})
}

// A 256 MiB upload goes through without dockgate holding it: the heap grows
// by far less than the body. This bounds memory, not time.
func TestRequestBodyStreamsWithoutBuffering(t *testing.T) {
	const size = 256 << 20
	dir := shortDir(t)
	var got int64
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got = n
		w.WriteHeader(200)
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.c.SetDeadline(time.Now().Add(45 * time.Second))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}()

	c.send("PUT /containers/x/archive?path=/ HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n")
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.c.Write(chunk); err != nil {
			t.Fatalf("upload broke after %d bytes: %v", sent, err)
		}
	}
	r := c.read("PUT")
	close(stop)
	<-sampled
	runtime.ReadMemStats(&after)
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	want(t, "bytes dockerd read", got, int64(size))
	const bound = 16 << 20
	t.Logf("%d MiB upload: %d KiB allocated; heap in use %d KiB before, at most %d KiB during",
		size>>20, (after.TotalAlloc-before.TotalAlloc)>>10, before.HeapInuse>>10, peak>>10)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > bound {
		t.Errorf("allocated %d MiB for a %d MiB upload", grew>>20, size>>20)
	}
	if peak > before.HeapInuse && peak-before.HeapInuse > bound {
		t.Errorf("heap in use grew by %d MiB during a %d MiB upload", (peak-before.HeapInuse)>>20, size>>20)
	}
	recs := finals(p.finalRecords())
	want(t, "bytes_in", recs[0].BytesIn, int64(size))
}

// A streamed chunked body is read through a larger buffer than request
// heads are: a request the client sent in the same write after the body
// is in that buffer, and must be served next, whole.
func TestRequestPipelinedAfterAStreamedChunkedBodyIsServed(t *testing.T) {
	dir := shortDir(t)
	var mu sync.Mutex
	var bodies []string
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+strconv.Itoa(len(b)))
		mu.Unlock()
		io.WriteString(w, "OK")
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	data := strings.Repeat("x", 70<<10)
	var body strings.Builder
	for range 4 {
		fmt.Fprintf(&body, "%x\r\n%s\r\n", len(data), data)
	}
	body.WriteString("0\r\n\r\n")
	c.send("PUT /containers/x/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n" + body.String() +
		"PUT /containers/y/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	for _, method := range []string{"PUT", "PUT", "GET"} {
		if r := c.read(method); r.StatusCode != 200 || r.body != "OK" {
			t.Fatalf("%s: status %d, body %q", method, r.StatusCode, r.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want(t, "what dockerd read", strings.Join(bodies, ", "), "PUT /containers/x/archive 286720, PUT /containers/y/archive 5, GET /_ping 0")
}
