package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dockgate/dockgate/authz"
)

// hookDecider allows what authz.AllowAll allows and sets the decision's
// Target and FilterResponse from the request, as the policy decider does
// for a tenant's lists.
type hookDecider struct {
	target  func(req *authz.Request) string
	filter  func(req *authz.Request) func([]byte) ([]byte, error)
	prepare func(req *authz.Request) func(context.Context) error
	verify  func(req *authz.Request) func(context.Context, int, []byte) error
	rewrite func(req *authz.Request) func(io.Writer) error
}

func (d hookDecider) Decide(ctx context.Context, m *authz.Match, req *authz.Request) authz.Decision {
	dec := authz.AllowAll{}.Decide(ctx, m, req)
	if d.target != nil {
		dec.Target = d.target(req)
	}
	if d.filter != nil {
		dec.FilterResponse = d.filter(req)
	}
	if d.prepare != nil {
		dec.Prepare = d.prepare(req)
	}
	if d.verify != nil {
		dec.Verify = d.verify(req)
	}
	if d.rewrite != nil {
		dec.RewriteSpool = d.rewrite(req)
	}
	return dec
}

// TestDecisionPrepare: what an allowed decision prepares runs before the
// request is forwarded; when it fails the request is refused with its
// status, never forwarded, and the connection carries on.
func TestDecisionPrepare(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	var prepared atomic.Int32
	dec := hookDecider{prepare: func(req *authz.Request) func(context.Context) error {
		switch req.URL.Path {
		case "/v1.41/volumes/ok":
			return func(context.Context) error { prepared.Add(1); return nil }
		case "/v1.41/volumes/raced":
			return func(context.Context) error {
				return &authz.RouteError{Status: http.StatusForbidden, Message: "the volume raced was created by someone else"}
			}
		case "/v1.41/volumes/down":
			return func(context.Context) error { return errors.New("connection refused") }
		}
		return nil
	}}
	p := startProxy(t, dir, up.upstream(), withDecider(dec))
	c := p.dial()
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1.41/volumes/raced", http.StatusForbidden},
		{"/v1.41/volumes/down", http.StatusBadGateway},
		{"/v1.41/volumes/ok", http.StatusOK},
	} {
		r := c.roundTrip("GET", "GET "+tc.path+" HTTP/1.1\r\nHost: docker\r\n\r\n")
		if r.StatusCode != tc.status {
			t.Fatalf("%s: status %d %q, want %d", tc.path, r.StatusCode, r.body, tc.status)
		}
		if tc.status != http.StatusOK && !strings.Contains(string(r.body), "dockgate: ") {
			t.Errorf("%s: refusal %q", tc.path, r.body)
		}
	}
	if s := nextSeen(t, seen); !strings.HasPrefix(s.head, "GET /v1.41/volumes/ok ") {
		t.Errorf("dockerd got %q first; the refused requests must not reach it", s.head)
	}
	if prepared.Load() != 1 {
		t.Errorf("prepared %d times, want 1", prepared.Load())
	}
	recs := finals(p.finalRecords())
	if len(recs) != 3 || recs[0].Decision != "deny" || recs[1].Decision != "error" || recs[2].Decision != "allow" {
		t.Fatalf("records: %+v", recs)
	}
}

func TestDecisionTargetIsForwarded(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	const pinned = "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%7B%22io.dockgate.owner%3Duser%3Anobody%22%3Atrue%7D%7D"
	dec := hookDecider{target: func(req *authz.Request) string {
		switch req.URL.Path {
		case "/v1.41/containers/json":
			return pinned
		case "/v1.41/info":
			// The received target itself: nothing to record.
			return req.URL.RequestURI()
		}
		return ""
	}}
	p := startProxy(t, dir, up.upstream(), withDecider(dec))
	c := p.dial()
	for _, tc := range []struct{ sent, forwarded string }{
		{"/v1.41/containers/json?all=1", pinned},
		{"/v1.41/info", "/v1.41/info"},
		{"/v1.41/version?x=1", "/v1.41/version?x=1"},
	} {
		if r := c.roundTrip("GET", "GET "+tc.sent+" HTTP/1.1\r\nHost: docker\r\n\r\n"); r.StatusCode != 200 {
			t.Fatalf("%s: status %d %q", tc.sent, r.StatusCode, r.body)
		}
		s := nextSeen(t, seen)
		if line, _, _ := strings.Cut(s.head, "\r\n"); line != "GET "+tc.forwarded+" HTTP/1.1" {
			t.Errorf("%s: dockerd got %q, want the target %s", tc.sent, line, tc.forwarded)
		}
	}
	recs := finals(p.finalRecords())
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	want(t, "forwarded of a changed target", recs[0].Forwarded, pinned)
	want(t, "forwarded of an unchanged target", recs[1].Forwarded, "")
	want(t, "forwarded without a target", recs[2].Forwarded, "")
	want(t, "path as received", recs[0].Path, "/v1.41/containers/json?all=1")
}

// filterDockerd answers each path its own way: the image list as one
// Content-Length body, disk usage chunked in pieces, a 404, a body over
// the filter limit, and an empty list.
func filterDockerd(t *testing.T, dir string) *fakeDockerd {
	return newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/images/json"):
			body := `["keep","drop","keep too"]` + "\n"
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			io.WriteString(w, body)
		case strings.HasSuffix(r.URL.Path, "/system/df"):
			// No Content-Length, flushed in pieces: chunked on the wire.
			for _, part := range []string{`["keep",`, `"drop",`, `"keep too"]`} {
				io.WriteString(w, part)
				w.(http.Flusher).Flush()
			}
		case strings.HasSuffix(r.URL.Path, "/volumes"):
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"drop stays: not filtered"}`)
		case strings.HasSuffix(r.URL.Path, "/networks"):
			w.Header().Set("Content-Length", strconv.Itoa(maxFilteredBody+1))
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for n := 0; n <= maxFilteredBody; n += len(chunk) {
				if _, err := w.Write(chunk[:min(len(chunk), maxFilteredBody+1-n)]); err != nil {
					return
				}
			}
		default:
			io.WriteString(w, `[]`)
		}
	}))
}

// dropFilter removes the element "drop" from a JSON list of strings; a
// body with "fail" in its target makes it fail.
func dropFilter(calls *atomic.Int64) func(req *authz.Request) func([]byte) ([]byte, error) {
	return func(req *authz.Request) func([]byte) ([]byte, error) {
		fail := strings.Contains(req.URL.RawQuery, "fail")
		return func(body []byte) ([]byte, error) {
			calls.Add(1)
			if fail {
				return nil, errors.New("the list is not what it should be")
			}
			return bytes.Replace(body, []byte(`"drop",`), nil, 1), nil
		}
	}
}

func TestFilteredResponse(t *testing.T) {
	dir := shortDir(t)
	up := filterDockerd(t, dir)
	var calls atomic.Int64
	p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{filter: dropFilter(&calls)}))
	c := p.dial()
	get := func(target string) response {
		t.Helper()
		return c.roundTrip("GET", "GET "+target+" HTTP/1.1\r\nHost: docker\r\n\r\n")
	}

	// All on one keep-alive connection: each filtered answer leaves it in
	// step for the next request.
	for i, tc := range []struct {
		name, target, body string
		filtered           bool
	}{
		{"Content-Length body", "/v1.41/images/json", `["keep","keep too"]` + "\n", true},
		{"chunked body", "/v1.41/system/df", `["keep","keep too"]`, true},
		{"non-200 passed through", "/v1.41/volumes?fail=1", `{"message":"drop stays: not filtered"}`, false},
		{"again after a filtered answer", "/v1.41/images/json", `["keep","keep too"]` + "\n", true},
	} {
		before := calls.Load()
		r := get(tc.target)
		if tc.filtered {
			want(t, tc.name+": status", r.StatusCode, 200)
		} else {
			want(t, tc.name+": status", r.StatusCode, 404)
		}
		want(t, tc.name+": body", r.body, tc.body)
		if r.ContentLength != int64(len(tc.body)) || len(r.TransferEncoding) > 0 {
			t.Errorf("%s: Content-Length %d, Transfer-Encoding %v; want Content-Length %d", tc.name, r.ContentLength, r.TransferEncoding, len(tc.body))
		}
		want(t, tc.name+": Content-Type kept", r.Header.Get("Content-Type"), "application/json")
		want(t, tc.name+": Api-Version kept", r.Header.Get("Api-Version"), "1.41")
		if got := calls.Load() - before; got != map[bool]int64{true: 1, false: 0}[tc.filtered] {
			t.Errorf("%s: filter called %d times", tc.name, got)
		}
		if r.Close {
			t.Fatalf("%s (request %d): the connection is closed", tc.name, i)
		}
	}
	recs := finals(p.finalRecords())
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	want(t, "bytes_out of the filtered answer", recs[0].BytesOut, int64(len(`["keep","keep too"]`+"\n")))
	want(t, "decision", recs[0].Decision, "allow")
	want(t, "status", recs[0].Status, 200)
}

func TestFilteredResponseErrorsAre502(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		parts        []string
	}{
		{"filter error", "/v1.41/images/json?fail=1", []string{"filtering dockerd's response", "the list is not what it should be"}},
		{"chunked answer, filter error", "/v1.41/system/df?fail=1", []string{"the list is not what it should be"}},
		{"over the limit", "/v1.41/networks", []string{"too large to filter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			up := filterDockerd(t, dir)
			var calls atomic.Int64
			p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{filter: dropFilter(&calls)}))
			c := p.dial()
			r := c.roundTrip("GET", "GET "+tc.target+" HTTP/1.1\r\nHost: docker\r\n\r\n")
			wantDockerError(t, r, http.StatusBadGateway, tc.parts...)
			if strings.Contains(r.body, "keep") || strings.Contains(r.body, "xxxx") {
				t.Errorf("dockerd's unfiltered body reached the client: %.100q", r.body)
			}
			// The connection is not kept after an answer that was not sent
			// as dockerd framed it.
			c.expectEOF()
			recs := finals(p.finalRecords())
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			want(t, "decision", recs[0].Decision, "error")
			want(t, "status", recs[0].Status, http.StatusBadGateway)
			if !strings.Contains(recs[0].Reason, tc.parts[0]) {
				t.Errorf("reason %q does not mention %q", recs[0].Reason, tc.parts[0])
			}
		})
	}
}

// TestFilteredResponseRecovers: after a 502 for a filter error, the next
// connection's filtered request is answered.
func TestFilteredResponseRecovers(t *testing.T) {
	dir := shortDir(t)
	up := filterDockerd(t, dir)
	var calls atomic.Int64
	p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{filter: dropFilter(&calls)}))
	c := p.dial()
	r := c.roundTrip("GET", "GET /v1.41/networks HTTP/1.1\r\nHost: docker\r\n\r\n")
	want(t, "status over the limit", r.StatusCode, http.StatusBadGateway)
	c = p.dial()
	r = c.roundTrip("GET", "GET /v1.41/images/json HTTP/1.1\r\nHost: docker\r\n\r\n")
	want(t, "status", r.StatusCode, 200)
	want(t, "body", r.body, `["keep","keep too"]`+"\n")
}

// TestHeadIsNotFiltered: a HEAD answer has no body to filter, and the
// connection stays in step after it.
func TestHeadIsNotFiltered(t *testing.T) {
	dir := shortDir(t)
	up := filterDockerd(t, dir)
	var calls atomic.Int64
	p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{filter: dropFilter(&calls)}))
	c := p.dial()
	r := c.roundTrip("HEAD", "HEAD /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	want(t, "status", r.StatusCode, 200)
	want(t, "filter calls", calls.Load(), int64(0))
	r = c.roundTrip("GET", "GET /v1.41/images/json HTTP/1.1\r\nHost: docker\r\n\r\n")
	want(t, "body after HEAD", r.body, `["keep","keep too"]`+"\n")
}
