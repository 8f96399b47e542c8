package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Graceful stop (SIGTERM): what is in flight finishes within the grace,
// what waits between requests closes at once, and what would run forever
// (a hijacked session) is cut when the grace ends, with its audit record.

// shutdownAsync runs Shutdown with a grace and reports its result and how
// long it took.
func shutdownAsync(p *testProxy, grace time.Duration) <-chan shutdownResult {
	ch := make(chan shutdownResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		start := time.Now()
		err := p.srv.Shutdown(ctx)
		ch <- shutdownResult{err, time.Since(start)}
	}()
	return ch
}

type shutdownResult struct {
	err  error
	took time.Duration
}

func awaitShutdown(t *testing.T, ch <-chan shutdownResult) shutdownResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return")
		return shutdownResult{}
	}
}

func TestSlowResponseInFlightFinishesDuringTheGrace(t *testing.T) {
	dir := shortDir(t)
	arrived := make(chan struct{})
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		time.Sleep(500 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Id":"slow"}`)
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send("GET /v1.41/containers/x/json HTTP/1.1\r\nHost: docker\r\n\r\n")
	<-arrived
	done := shutdownAsync(p, 5*time.Second)

	// No new connection is accepted once Shutdown began.
	waitFor(t, "the listener to close", ioTimeout, func() bool {
		nc, err := net.Dial("unix", p.sock)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	r := c.read("GET")
	want(t, "status", r.StatusCode, http.StatusOK)
	want(t, "body", r.body, `{"Id":"slow"}`)
	// The connection closes after the response instead of waiting for
	// another request.
	c.expectEOF()
	res := awaitShutdown(t, done)
	if res.err != nil {
		t.Fatalf("Shutdown: %v, want nil (everything finished in time)", res.err)
	}
	recs := finals(p.records())
	if len(recs) != 1 || recs[0].Status != http.StatusOK || recs[0].Decision != "allow" {
		t.Fatalf("records %+v, want the slow request on record with 200", recs)
	}
}

func TestHijackedSessionIsClosedWhenTheGraceEnds(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHeadRaw(br); err != nil {
			return
		}
		io.WriteString(c, head101+"hello\n")
		io.Copy(io.Discard, br) // an idle session: dockerd never ends it
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send(attachUpgrade)
	if r := c.readHead("POST"); r.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", r.StatusCode)
	}
	p.waitRecords(1) // the start record

	const grace = 300 * time.Millisecond
	done := shutdownAsync(p, grace)
	c.send("stdin still flows during the grace\n")
	out, err := io.ReadAll(c.br)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("reading the session: %v", err)
	}
	want(t, "output", string(out), "hello\n")
	res := awaitShutdown(t, done)
	if !errors.Is(res.err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the grace's deadline", res.err)
	}
	if res.took < grace {
		t.Errorf("session cut after %v, before the grace of %v ended", res.took, grace)
	}
	recs := finals(p.records())
	if len(recs) != 1 || !recs[0].Hijacked || recs[0].Status != http.StatusSwitchingProtocols {
		t.Fatalf("records %+v, want the session's final record", recs)
	}
	want(t, "bytes_in", recs[0].BytesIn, int64(len("stdin still flows during the grace\n")))
}

func TestIdleConnectionsCloseAtOnce(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	p := startProxy(t, dir, up.upstream())
	used := p.dial() // served a request, now waits for the next
	if r := used.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"); r.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.StatusCode)
	}
	fresh := p.dial() // never sent anything
	waitFor(t, "both connections to be served", ioTimeout, func() bool { return p.srv.ActiveConns() == 2 })
	waitFor(t, "both connections to be idle", ioTimeout, func() bool { return len(p.idleConns()) == 2 })

	const grace = 10 * time.Second
	res := awaitShutdown(t, shutdownAsync(p, grace))
	if res.err != nil {
		t.Fatalf("Shutdown: %v", res.err)
	}
	if res.took > time.Second {
		t.Errorf("Shutdown took %v with only idle connections, want at once", res.took)
	}
	used.expectEOF()
	fresh.expectEOF()
	if n := len(p.records()); n != 1 {
		t.Errorf("%d audit records, want only the ping's: closing an idle connection is no request", n)
	}
}

// A second SIGTERM ends the grace at once: Shutdown's context is cancelled
// and the session is cut without waiting for the rest of the grace.
func TestCancelledGraceCutsAtOnce(t *testing.T) {
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		if _, err := readHeadRaw(br); err != nil {
			return
		}
		io.WriteString(c, head101)
		io.Copy(io.Discard, br)
	})
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send(attachUpgrade)
	if r := c.readHead("POST"); r.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", r.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	done := make(chan error, 1)
	go func() { done <- p.srv.Shutdown(ctx) }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: %v, want context.Canceled", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return after its context was cancelled")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("cut took %v", took)
	}
	c.expectEOF()
}
