package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// logs -f: each piece dockerd writes reaches the client before dockerd
// writes the next.
func TestStreamingResponseIsFlushedAsItArrives(t *testing.T) {
	dir := shortDir(t)
	gate := make(chan struct{})
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		w.WriteHeader(200)
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		case <-time.After(ioTimeout):
			return
		}
		io.WriteString(w, "second\n")
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send("GET /v1.41/containers/x/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
	resp := c.readHead("GET")
	if resp.StatusCode != 200 || len(resp.TransferEncoding) == 0 {
		t.Fatalf("status %d, transfer encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	// dockerd holds "second" until the client has "first".
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	first := make([]byte, len("first\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first piece not delivered while dockerd waits: %v", err)
	}
	want(t, "first", string(first), "first\n")
	close(gate)
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "rest", string(rest), "second\n")

	recs := p.finalRecords()
	if len(recs) != 2 || recs[0].Phase != "start" || recs[1].Phase != "" {
		t.Fatalf("records %+v, want a start record and a final one", recs)
	}
	want(t, "bytes_out", recs[1].BytesOut, int64(len("first\nsecond\n")))
}

// A client that leaves a quiet stream (events, logs -f with no output) ends
// dockerd's request: dockerd sees its context cancelled.
func TestClientDisconnectCancelsTheUpstreamRequest(t *testing.T) {
	for _, tc := range []struct {
		name, req string
	}{
		{"quiet events stream", "GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n"},
		{"quiet logs stream", "GET /containers/x/logs?follow=1 HTTP/1.1\r\nHost: docker\r\n\r\n"},
		{"quiet build after its context was uploaded", "POST /build HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: 5\r\n\r\nhello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			cancelled := make(chan struct{})
			up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					close(cancelled)
				case <-time.After(ioTimeout):
				}
			}))
			p := startProxy(t, dir, up.upstream())
			c := p.dial()
			c.send(tc.req)
			c.readHead(strings.Fields(tc.req)[0])
			c.c.Close()
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("dockerd's request still runs after the client left")
			}
			recs := finals(p.finalRecords())
			if len(recs) != 1 || !strings.Contains(recs[0].Reason, "client went away") {
				t.Errorf("records %+v", recs)
			}
		})
	}
}

// TestClientLeavingABusyStreamEndsIt: a stream whose client is found gone
// by a failed write rather than by the watcher (events while containers
// come and go, a client that had begun its next request). The request then ends and dockerd's request is
// cancelled, rather than the proxy reading the rest of an endless stream
// (closing an unfinished body reads it to its end), which kept a dockgate
// from stopping with such a connection open.
func TestClientLeavingABusyStreamEndsIt(t *testing.T) {
	dir := shortDir(t)
	cancelled := make(chan struct{})
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		event := []byte(`{"Type":"container","Action":"start","Actor":{"ID":"` + strings.Repeat("a", 64) + `"}}` + "\n")
		for {
			if _, err := w.Write(event); err != nil {
				close(cancelled)
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(cancelled)
				return
			default:
			}
		}
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	// The first byte of a pipelined next request: the watcher sees it
	// and so cannot see the client leave; only the copy's write can.
	c.send("GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\nG")
	c.readHead("GET")
	c.c.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("dockerd's stream still runs after the client left")
	}
	p.shutdown()
	recs := finals(p.finalRecords())
	if len(recs) != 1 || !strings.Contains(recs[0].Reason, "client went away") {
		t.Errorf("records %+v", recs)
	}
}

// socat and nc -N send the request, shut down their write side and wait for
// the answer: that half-close is not the client leaving.
func TestHalfClosedClientStillGetsTheWholeAnswer(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "[")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		io.WriteString(w, strings.Repeat(`{},`, 50000)+"{}]")
	}))
	p := startProxy(t, dir, up.upstream())
	for _, tc := range []struct{ name, req string }{
		{"HTTP/1.1 with Connection: close", "GET /containers/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0", "GET /containers/json HTTP/1.0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.dial()
			c.send(tc.req)
			c.c.CloseWrite()
			r := c.read("GET")
			if r.StatusCode != 200 || len(r.body) != 1+3*50000+3 {
				t.Fatalf("status %d, %d bytes of %d", r.StatusCode, len(r.body), 1+3*50000+3)
			}
		})
	}
}
