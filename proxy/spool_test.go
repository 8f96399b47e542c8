package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockgate/dockgate/authz"
)

// spoolDecider records what it saw of a spooled body, read from the file
// as an extractor reads it, and refuses bodies containing "evil".
type spoolDecider struct {
	mu    sync.Mutex
	body  []byte
	size  int64
	name  string
	sum   [32]byte
	whole bool // keep the body itself (small tests)
}

func (d *spoolDecider) Decide(ctx context.Context, m *authz.Match, req *authz.Request) authz.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.body, d.size, d.name = nil, req.BodySize, ""
	if req.BodyFile != nil {
		d.name = req.BodyFile.Name()
		h := sha256.New()
		var w io.Writer = h
		var buf strings.Builder
		if d.whole {
			w = io.MultiWriter(h, &buf)
		}
		if _, err := io.Copy(w, io.NewSectionReader(req.BodyFile, 0, req.BodySize)); err != nil {
			return authz.Decision{Status: http.StatusBadRequest, Reason: err.Error()}
		}
		copy(d.sum[:], h.Sum(nil))
		d.body = []byte(buf.String())
		if strings.Contains(buf.String(), "evil") {
			return authz.Decision{Status: http.StatusForbidden, Reason: "evil body"}
		}
	}
	return authz.AllowAll{}.Decide(ctx, m, req)
}

func withDecider(d authz.Decider) proxyOption {
	return func(c *Config) { c.Decider = d }
}

func TestSpooledBodyIsJudgedFromAFileAndForwardedWithContentLength(t *testing.T) {
	dir := shortDir(t)
	spoolDir := t.TempDir()
	up, seen := newRecordingDockerd(t, dir)
	dec := &spoolDecider{whole: true}
	p := startProxy(t, dir, up.upstream(), withDecider(dec), withLimits(Limits{MaxRequestLine: 8 << 10, MaxHeaderBytes: 64 << 10, MaxBodyBytes: 1 << 20, MaxSpoolBytes: 1 << 20, SpoolDir: spoolDir}))
	c := p.dial()
	tarball := strings.Repeat("tarball bytes ", 1000)
	for _, tc := range []struct{ name, req string }{
		{"Content-Length body", "POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nContent-Length: " + strconv.Itoa(len(tarball)) + "\r\n\r\n" + tarball},
		{"chunked body", "POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(tarball)-10), 16) + "\r\n" + tarball[:len(tarball)-10] + "\r\na\r\n" + tarball[len(tarball)-10:] + "\r\n0\r\n\r\n"},
		{"Expect: 100-continue", "POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nExpect: 100-continue\r\nContent-Length: " + strconv.Itoa(len(tarball)) + "\r\n\r\n" + tarball},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.send(tc.req)
			r := c.read("POST")
			if r.StatusCode == http.StatusContinue {
				r = c.read("POST")
			}
			if r.StatusCode != 200 {
				t.Fatalf("status %d: %s", r.StatusCode, r.body)
			}
			s := nextSeen(t, seen)
			if !strings.Contains(s.head, "Content-Length: "+strconv.Itoa(len(tarball))+"\r\n") || strings.Contains(s.head, "chunked") {
				t.Errorf("forwarded head %q: want the spooled length", s.head)
			}
			if s.body != tarball {
				t.Errorf("dockerd read %d bytes, not the body", len(s.body))
			}
			dec.mu.Lock()
			defer dec.mu.Unlock()
			if string(dec.body) != tarball || dec.size != int64(len(tarball)) {
				t.Errorf("decider read %d bytes (size %d), not the body", len(dec.body), dec.size)
			}
			if !strings.HasPrefix(dec.name, spoolDir+"/") {
				t.Errorf("spooled to %q, not in %s", dec.name, spoolDir)
			}
		})
	}
	t.Run("nothing is left in the spool directory", func(t *testing.T) {
		ents, err := os.ReadDir(spoolDir)
		if err != nil || len(ents) != 0 {
			t.Fatalf("spool dir: %v %v", ents, err)
		}
	})
	t.Run("refused spooled body is not forwarded and the connection goes on", func(t *testing.T) {
		evil := "evil" + tarball
		r := c.roundTrip("POST", "POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nContent-Length: "+strconv.Itoa(len(evil))+"\r\n\r\n"+evil)
		wantDockerError(t, r, http.StatusForbidden, "evil body")
		noMoreSeen(t, seen)
		r = c.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
		if r.StatusCode != 200 {
			t.Fatalf("next request on the connection: status %d", r.StatusCode)
		}
		nextSeen(t, seen)
	})
	t.Run("above the spool limit: 413, never forwarded", func(t *testing.T) {
		c := p.dial()
		r := c.roundTrip("POST", "POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nContent-Length: "+strconv.Itoa(2<<20)+"\r\n\r\n")
		wantDockerError(t, r, http.StatusRequestEntityTooLarge, "spool limit")
		c = p.dial()
		big := strings.Repeat("x", 1<<20+1)
		c.send("POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(big)), 16) + "\r\n" + big + "\r\n0\r\n\r\n")
		r = c.read("POST")
		wantDockerError(t, r, http.StatusRequestEntityTooLarge, "spool limit")
		noMoreSeen(t, seen)
	})
	t.Run("a body cut short is never forwarded", func(t *testing.T) {
		c := p.dial()
		c.send("POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\nContent-Length: 100\r\n\r\nshort")
		c.c.CloseWrite()
		io.Copy(io.Discard, c.br)
		noMoreSeen(t, seen)
	})
}

// TestSpooledLoadKeepsMemoryFlat sends a 256 MiB image load and a 1 GiB
// build context through the proxy to a dockerd that reads them in small
// pieces: the proxy's heap must not grow with the body.
func TestSpooledLoadKeepsMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("1.25 GiB through the proxy")
	}
	for _, tc := range []struct {
		target string
		size   int
	}{
		{"/v1.41/images/load", 256 << 20},
		{"/v1.41/build?t=ci.local%2Fapp", 1 << 30},
	} {
		t.Run(tc.target, func(t *testing.T) { spoolMemoryFlat(t, tc.target, tc.size) })
	}
}

func spoolMemoryFlat(t *testing.T, target string, size int) {
	dir := shortDir(t)
	var got atomic.Int64
	sum := make(chan [32]byte, 1)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Error(err)
			return
		}
		h := sha256.New()
		n, _ := io.CopyBuffer(h, req.Body, make([]byte, 32<<10))
		got.Store(n)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		sum <- s
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	})
	dec := &spoolDecider{}
	p := startProxy(t, dir, up.upstream(), withDecider(dec), withLimits(Limits{MaxRequestLine: 8 << 10, MaxHeaderBytes: 64 << 10, MaxBodyBytes: 1 << 20, SpoolDir: t.TempDir()}))
	c := p.dial()
	c.c.SetDeadline(time.Now().Add(2 * time.Minute))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
	}()

	h := sha256.New()
	go func() {
		w := bufio.NewWriterSize(c.c, 64<<10)
		io.WriteString(w, "POST "+target+" HTTP/1.1\r\nHost: docker\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = byte(i * 7)
		}
		for n := 0; n < size; n += len(chunk) {
			chunk[0] = byte(n >> 16)
			h.Write(chunk)
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.Flush()
	}()
	r := c.read("POST")
	close(stop)
	<-sampled
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	if got.Load() != int64(size) {
		t.Fatalf("dockerd read %d bytes, want %d", got.Load(), size)
	}
	var want [32]byte
	copy(want[:], h.Sum(nil))
	if s := <-sum; s != want {
		t.Fatal("dockerd read other bytes than were sent")
	}
	if dec.sum != want || dec.size != int64(size) {
		t.Fatal("the decider read other bytes than were sent")
	}
	growth := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("heap: %d KiB before, peak %d KiB, growth %d KiB for a %d MiB body", before.HeapAlloc>>10, peak.Load()>>10, growth>>10, size>>20)
	if growth > 16<<20 {
		t.Fatalf("heap grew by %d MiB while spooling a %d MiB body", growth>>20, size>>20)
	}
}

// TestSpooledBodyDockerdAnswersEarly: dockerd refuses a build without
// reading its context; the answer reaches the client and nothing hangs.
func TestSpooledBodyDockerdAnswersEarly(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHeadRaw(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 30\r\nConnection: close\r\n\r\n{\"message\":\"no build for you\"}")
		time.Sleep(100 * time.Millisecond)
		c.Close()
	})
	p := startProxy(t, dir, up.upstream(), withDecider(&spoolDecider{}))
	c := p.dial()
	body := strings.Repeat("x", 8<<20)
	start := time.Now()
	r := c.roundTrip("POST", "POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	if r.StatusCode != 400 || !strings.Contains(r.body, "no build for you") {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
