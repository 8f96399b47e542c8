package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// responseSeeds are dockerd-like answers and the odd ones around them.
var responseSeeds = []struct{ method, raw string }{
	{"GET", "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; charset=utf-8\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\nDate: Sun, 06 Dec 2026 04:23:23 GMT\r\nContent-Length: 2\r\n\r\nOK"},
	{"HEAD", "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\n"},
	{"GET", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
	{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"},
	{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{"POST", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"},
	{"GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"},
	{"POST", "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw"},
	{"GET", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"},
	{"GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"},
	{"GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"},
	{"GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{"GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
	{"GET", "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc"},
	{"GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"},
	{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
	{"GET", "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
	{"GET", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
	{"GET", "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n{\"message\":\"No such container: x\"}\n"},
	{"GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"GET", "HTTP/2.0 200 OK\r\n\r\n"},
	{"GET", "HTTP/1.1 2000 OK\r\n\r\n"},
	{"GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"},
	{"GET", "HTTP/1.1 100 \r\nTrAnsfer-EnCoding:Chunked\r\nTrAiler:\r\n\r\n"},
	{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, x-more\r\n\r\n0\r\nX-Sum: 1\r\n\r\n"},
	{"GET", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 2\r\n\r\nok"},
	{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: content-length\r\n\r\n0\r\n\r\n"},
}

// readBoth reads one response with net/http and with readResponseHead,
// bodies included, and what is left on the connection after it.
type readResult struct {
	resp    *http.Response
	body    []byte
	bodyErr error
	rest    []byte
}

func readWith(t *testing.T, raw, method string, ours bool, prev *respReader) (readResult, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), 64)
	var resp *http.Response
	var err error
	if ours {
		resp, err = readResponseHead(br, method, prev)
	} else {
		resp, err = http.ReadResponse(br, &http.Request{Method: method})
	}
	if err != nil {
		return readResult{}, err
	}
	r := readResult{resp: resp}
	r.body, r.bodyErr = io.ReadAll(resp.Body)
	if r.bodyErr == nil {
		resp.Body.Close()
		r.rest, _ = io.ReadAll(br)
	}
	return r, nil
}

// sameAsNetHTTP fails when readResponseHead accepts a response net/http
// refuses, or reads it differently: another status, header, length, body,
// or another idea of where the next response starts. Refusing what
// net/http accepts is allowed: dockgate is stricter on purpose.
func sameAsNetHTTP(t *testing.T, raw, method string) {
	var prev respReader
	// Twice on one connection's lines, the second time with the first's
	// lines to reuse.
	for range 2 {
		ours, err := readWith(t, raw, method, true, &prev)
		if err != nil {
			return
		}
		theirs, err := readWith(t, raw, method, false, nil)
		if err != nil {
			t.Fatalf("%q: accepted, but net/http says %v", raw, err)
		}
		o, n := ours.resp, theirs.resp
		if o.StatusCode != n.StatusCode || o.Status != n.Status || o.ProtoMinor != n.ProtoMinor || o.ContentLength != n.ContentLength || o.Close != n.Close || !slices.Equal(o.TransferEncoding, n.TransferEncoding) {
			t.Fatalf("%q: ours %d %q 1.%d length %d close %v te %v; net/http %d %q 1.%d length %d close %v te %v", raw,
				o.StatusCode, o.Status, o.ProtoMinor, o.ContentLength, o.Close, o.TransferEncoding,
				n.StatusCode, n.Status, n.ProtoMinor, n.ContentLength, n.Close, n.TransferEncoding)
		}
		if len(o.Header) != len(n.Header) {
			t.Fatalf("%q: header %v, net/http %v", raw, o.Header, n.Header)
		}
		for k, v := range n.Header {
			if !slices.Equal(o.Header[k], v) {
				t.Fatalf("%q: header %s = %q, net/http %q", raw, k, o.Header[k], v)
			}
		}
		if ours.bodyErr != nil {
			continue // stricter about the body: the connection closes
		}
		if theirs.bodyErr != nil {
			t.Fatalf("%q: body read whole, net/http says %v", raw, theirs.bodyErr)
		}
		if !bytes.Equal(ours.body, theirs.body) || !bytes.Equal(ours.rest, theirs.rest) {
			t.Fatalf("%q: body %q then %q; net/http %q then %q", raw, ours.body, ours.rest, theirs.body, theirs.rest)
		}
	}
}

func TestResponseHeadReadAsNetHTTPReadsIt(t *testing.T) {
	for _, s := range responseSeeds {
		t.Run(strings.SplitN(s.raw, "\r\n", 2)[0], func(t *testing.T) { sameAsNetHTTP(t, s.raw, s.method) })
	}
}

func TestResponseHeadRefusesWhatCouldBeReadTwoWays(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
		"HTTP/2.0 200 OK\r\n\r\n",
	} {
		if _, err := readResponseHead(bufio.NewReader(strings.NewReader(raw)), "GET", new(respReader)); err == nil {
			t.Errorf("%q accepted", raw)
		}
	}
}

// Lines that come again on a connection are the previous response's
// strings, not copies, and the head is read into the previous head's
// storage: that is what saves the allocations.
func TestResponseHeadReusesRepeatedLines(t *testing.T) {
	var prev respReader
	raw := responseSeeds[0].raw
	first, err := readResponseHead(bufio.NewReader(strings.NewReader(raw)), "GET", &prev)
	if err != nil {
		t.Fatal(err)
	}
	firstDate := first.Header.Get("Date")
	second := strings.Replace(raw, "04:23:23", "04:23:24", 1)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := readResponseHead(bufio.NewReader(strings.NewReader(second)), "GET", &prev); err != nil {
			t.Fatal(err)
		}
	})
	resp, _ := readResponseHead(bufio.NewReader(strings.NewReader(second)), "GET", &prev)
	if resp.Header.Get("Date") != "Sun, 06 Dec 2026 04:23:24 GMT" || firstDate != "Sun, 06 Dec 2026 04:23:23 GMT" {
		t.Fatalf("dates %q and %q", firstDate, resp.Header.Get("Date"))
	}
	// Three are the test's readers and buffer, one the Date line that
	// changed; net/http's ReadResponse takes 18 of its own for this head.
	if allocs > 4 {
		t.Errorf("%.0f allocations per response head, want at most 4", allocs)
	}
}

// A head read into the storage of the one before it holds nothing of that
// one: no header, value, length or body left over.
func TestResponseHeadReusedStorageStartsEmpty(t *testing.T) {
	var rr respReader
	heads := []string{
		"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nB: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nC: 4\r\nContent-Length: 2\r\n\r\nxy",
		"HTTP/1.1 204 No Content\r\n\r\n",
	}
	for i, raw := range heads {
		ours, err := readWith(t, raw, "GET", true, &rr)
		if err != nil {
			t.Fatalf("head %d: %v", i, err)
		}
		theirs, err := readWith(t, raw, "GET", false, nil)
		if err != nil {
			t.Fatalf("head %d: net/http: %v", i, err)
		}
		o, n := ours.resp, theirs.resp
		if o.StatusCode != n.StatusCode || o.ContentLength != n.ContentLength || o.Close != n.Close || !slices.Equal(o.TransferEncoding, n.TransferEncoding) || len(o.Header) != len(n.Header) {
			t.Fatalf("head %d: ours %d length %d close %v te %v %v; net/http %d length %d close %v te %v %v", i,
				o.StatusCode, o.ContentLength, o.Close, o.TransferEncoding, o.Header, n.StatusCode, n.ContentLength, n.Close, n.TransferEncoding, n.Header)
		}
		for k, v := range n.Header {
			if !slices.Equal(o.Header[k], v) {
				t.Fatalf("head %d: header %s = %q, net/http %q", i, k, o.Header[k], v)
			}
		}
		if !bytes.Equal(ours.body, theirs.body) {
			t.Fatalf("head %d: body %q, net/http %q", i, ours.body, theirs.body)
		}
	}
}

func FuzzReadResponseHead(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add(s.method, s.raw)
	}
	f.Fuzz(func(t *testing.T, method, raw string) {
		if method != "GET" && method != "HEAD" && method != "POST" {
			method = "GET"
		}
		sameAsNetHTTP(t, raw, method)
	})
}
