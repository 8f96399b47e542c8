package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// recordingObserver keeps what the proxy told it.
type recordingObserver struct {
	mu       sync.Mutex
	finished []audit.Record
	open     int // hijacked sessions open now
	maxOpen  int
	refused  []string // limits that refused a connection
	silent   int      // connections closed for sending no request
}

func (o *recordingObserver) Finished(rec *audit.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := *rec
	r.Facts = slices.Clone(r.Facts)
	o.finished = append(o.finished, r)
}

func (o *recordingObserver) HijackStarted() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.open++
	o.maxOpen = max(o.maxOpen, o.open)
}

func (o *recordingObserver) HijackEnded() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.open--
}

func (o *recordingObserver) ConnRefused(limit string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused = append(o.refused, limit)
}

func (o *recordingObserver) SilentConnClosed() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.silent++
}

// conns is what the observer heard about connections.
func (o *recordingObserver) conns() (refused []string, silent int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.refused...), o.silent
}

func (o *recordingObserver) state() (finished []audit.Record, open, maxOpen int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]audit.Record(nil), o.finished...), o.open, o.maxOpen
}

func withObserver(o Observer) proxyOption {
	return func(c *Config) { c.Observer = o }
}

// The observer gets every final record (not the start records) and the
// brackets of a hijacked session.
func TestObserverSeesFinishedRequestsAndHijacks(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequestRaw(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/_ping" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
			io.Copy(c, br)
			return
		}
	})
	obs := &recordingObserver{}
	p := startProxy(t, dir, up.upstream(), withObserver(obs))
	c := p.dial()
	r := c.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	if r.StatusCode != 200 {
		t.Fatalf("ping: %d", r.StatusCode)
	}
	c.send("POST /containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
	if resp := c.readHead("POST"); resp.StatusCode != 200 {
		t.Fatalf("attach: %d", resp.StatusCode)
	}
	waitFor(t, "the hijack to be observed", 5*time.Second, func() bool { _, open, _ := obs.state(); return open == 1 })
	c.send("stdin\n")
	c.c.CloseWrite()
	io.ReadAll(c.br)
	p.shutdown()
	finished, open, maxOpen := obs.state()
	if open != 0 || maxOpen != 1 {
		t.Errorf("hijacked sessions: open %d max %d, want 0 and 1", open, maxOpen)
	}
	if len(finished) != 2 || finished[0].Action != "system.ping" || finished[0].Status != 200 ||
		finished[1].Action != "container.attach" || !finished[1].Hijacked || finished[1].Phase != "" || finished[1].BytesIn != 6 {
		t.Errorf("finished records: %+v", finished)
	}
	if n := len(finals(p.finalRecords())); n != len(finished) {
		t.Errorf("observer saw %d records, the audit log has %d final ones", len(finished), n)
	}
}

// A request dockerd cannot be reached for is observed with its 502.
func TestObserverSeesUpstreamErrors(t *testing.T) {
	dir := shortDir(t)
	obs := &recordingObserver{}
	p := startProxy(t, dir, Upstream{URL: "unix:///nonexistent", Network: "unix", Address: dir + "/nope.sock"}, withObserver(obs))
	r := p.dial().roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	if r.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", r.StatusCode)
	}
	p.shutdown()
	if finished, _, _ := obs.state(); len(finished) != 1 || finished[0].Status != http.StatusBadGateway {
		t.Errorf("finished: %+v", finished)
	}
}
