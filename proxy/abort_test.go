package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/audit"
)

// A client that goes away before its request ended is on record as
// "outcome":"client_aborted" with the decision that was made and the
// status it was sent (0 when none), never as a refusal nobody received.
// A stream the client ends (logs -f, events) ends normally.

// abortedRecord waits for the one final record and checks it is an abort.
func abortedRecord(t *testing.T, p *testProxy, status int, reason string) auditLine {
	t.Helper()
	var fin []auditLine
	waitFor(t, "the final record", ioTimeout, func() bool { fin = finals(p.records()); return len(fin) > 0 })
	if len(fin) != 1 {
		t.Fatalf("%d final records: %+v", len(fin), fin)
	}
	r := fin[0]
	if r.Decision != audit.DecisionAllow || r.Outcome != audit.OutcomeClientAborted || r.Status != status || !strings.Contains(r.Reason, reason) {
		t.Errorf("record: decision %q, outcome %q, status %d, reason %q; want allow, %s, %d, %q",
			r.Decision, r.Outcome, r.Status, r.Reason, audit.OutcomeClientAborted, status, reason)
	}
	return r
}

func TestClientAbortsAreRecordedAsSuch(t *testing.T) {
	const sent = 300 << 10
	for _, tc := range []struct {
		name   string
		target string
		ctype  string
		// answerFirst: dockerd answers before it reads the body, as
		// image import streams its progress.
		answerFirst bool
		status      int
		reason      string
	}{
		{name: "judged body cut short", target: "POST /v1.41/containers/create", ctype: "application/json",
			reason: fmt.Sprintf("after %d bytes of the request body, before the request was judged; nothing was forwarded", sent)},
		{name: "spooled build context cut short", target: "POST /v1.41/build", ctype: "application/x-tar",
			reason: fmt.Sprintf("after %d bytes of the request body, before the request was judged", sent)},
		{name: "streamed archive upload cut short", target: "PUT /v1.41/containers/x/archive?path=/", ctype: "application/x-tar",
			reason: "of the request body; dockerd's request was cut off"},
		{name: "import cut short while dockerd answers", target: "POST /v1.41/images/create?fromSrc=-", ctype: "application/x-tar",
			answerFirst: true, status: 200, reason: "of the request body, while dockerd answered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.answerFirst {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"status":"Importing"}`+"\n")
					w.(http.Flusher).Flush()
				}
				if _, err := io.Copy(io.Discard, r.Body); err != nil {
					return
				}
				io.WriteString(w, "{}\n")
			}))
			p := startProxy(t, dir, up.upstream())
			method, target, _ := strings.Cut(tc.target, " ")
			c := p.dial()
			// Announced: more than is sent, within the judged body limit.
			c.send(fmt.Sprintf("%s %s HTTP/1.1\r\nHost: docker\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", method, target, tc.ctype, 1<<20))
			c.send(strings.Repeat("x", sent))
			if tc.answerFirst {
				want(t, "status", c.readHead(method).StatusCode, 200)
			}
			c.c.Close()
			r := abortedRecord(t, p, tc.status, tc.reason)
			if tc.answerFirst || strings.Contains(tc.name, "archive") {
				// Streamed: what reached dockgate, whatever reached dockerd.
				if r.BytesIn <= 0 || r.BytesIn > sent {
					t.Errorf("bytes_in %d, want up to %d", r.BytesIn, sent)
				}
			} else if r.BytesIn != sent {
				t.Errorf("bytes_in %d, want %d", r.BytesIn, sent)
			}
		})
	}
}

// A chunked body cut short is an abort too; a malformed one is not: it is
// refused.
func TestChunkedBodyCutShortIsAnAbort(t *testing.T) {
	dir := shortDir(t)
	up := sinkDockerd(t, dir)
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send("PUT /v1.41/containers/x/archive?path=/ HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"400\r\n" + strings.Repeat("x", 0x400) + "\r\n100\r\nxx")
	c.c.CloseWrite()
	c.expectEOF()
	abortedRecord(t, p, 0, "of the request body")
}

// An answer that is not a stream, cut short because the client left, is
// an abort; the status is dockerd's, which the client was sent.
func TestResponseCutByTheClientIsAnAbort(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		w.Header().Set("Content-Length", fmt.Sprint(64<<20))
		io.Copy(w, io.LimitReader(zeros{}, 64<<20))
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send("GET /v1.41/containers/x/export HTTP/1.1\r\nHost: docker\r\n\r\n")
	resp := c.readHead("GET")
	want(t, "status", resp.StatusCode, 200)
	io.ReadFull(resp.Body, make([]byte, 1<<20))
	c.c.Close()
	r := abortedRecord(t, p, 200, "client went away during the response")
	if r.BytesOut < 1<<20 || r.BytesOut >= 64<<20 {
		t.Errorf("bytes_out %d", r.BytesOut)
	}
}

// A stream the client ends is its normal end, and a request whose client
// waits for the whole answer is no abort either.
func TestStreamEndedByTheClientIsNoAbort(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"start"}`+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	p := startProxy(t, dir, up.upstream())
	c := p.dial()
	c.send("GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
	resp := c.readHead("GET")
	want(t, "status", resp.StatusCode, 200)
	p.waitRecords(1)
	c.c.Close()
	var fin []auditLine
	waitFor(t, "the final record", ioTimeout, func() bool { fin = finals(p.records()); return len(fin) > 0 })
	if r := fin[0]; r.Outcome != "" || r.Decision != audit.DecisionAllow || r.Status != 200 {
		t.Errorf("record: decision %q, outcome %q, status %d", r.Decision, r.Outcome, r.Status)
	}
}
