package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dockgate/dockgate/authz"
)

const verifyID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// createDockerd answers a container create 201 with the new container's
// ID (chunked when the name says so), or 404 for the name "missing".
func createDockerd(t *testing.T, dir string) *fakeDockerd {
	return newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.41")
		body := `{"Id":"` + verifyID + `","Warnings":[]}` + "\n"
		switch r.URL.Query().Get("name") {
		case "missing":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"No such image: x:1"}`)
		case "chunked":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, body[:10])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[10:])
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, body)
		}
	}))
}

// verifyCalls records what the decisions' Verify saw and what it removed.
type verifyCalls struct {
	mu      sync.Mutex
	seen    []string // "status body"
	removed []string
}

// hook is a Verify that checks nothing for "ok", "chunked" and
// "missing", finds the image swapped for "swapped" (and removes the
// container, as authz's does), and cannot ask dockerd for "down".
func (v *verifyCalls) hook(req *authz.Request) func(context.Context, int, []byte) error {
	name := req.URL.Query().Get("name")
	return func(_ context.Context, status int, body []byte) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.seen = append(v.seen, http.StatusText(status)+" "+string(body))
		if status != http.StatusCreated {
			return nil
		}
		switch name {
		case "swapped":
			v.removed = append(v.removed, verifyID)
			return &authz.RouteError{Status: http.StatusConflict, Message: "the image x:1 changed between the decision and the create; the container was removed"}
		case "down":
			return errors.New("cannot check the image: connection refused")
		}
		return nil
	}
}

func createRequest(name string) string {
	body := `{"Image":"x:1"}`
	return "POST /v1.41/containers/create?name=" + name + " HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// TestVerifiedCreate: the answer to a request whose decision checks it
// reaches the client only when the check passes; a failed check answers
// its error instead of dockerd's 201, on a connection that stays in step.
func TestVerifiedCreate(t *testing.T) {
	dir := shortDir(t)
	up := createDockerd(t, dir)
	var calls verifyCalls
	p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{verify: calls.hook}))
	c := p.dial()
	created := `{"Id":"` + verifyID + `","Warnings":[]}` + "\n"
	for _, tc := range []struct {
		name   string
		status int
		body   string // the whole body, for answers passed on
		parts  []string
	}{
		{name: "ok", status: http.StatusCreated, body: created},
		{name: "swapped", status: http.StatusConflict, parts: []string{"changed between the decision and the create", "removed"}},
		{name: "chunked", status: http.StatusCreated, body: created},
		{name: "down", status: http.StatusBadGateway, parts: []string{"cannot check the image"}},
		{name: "missing", status: http.StatusNotFound, body: `{"message":"No such image: x:1"}`},
		{name: "ok", status: http.StatusCreated, body: created},
	} {
		r := c.roundTrip("POST", createRequest(tc.name))
		if tc.parts != nil {
			wantDockerError(t, r, tc.status, tc.parts...)
			if strings.Contains(r.body, "Warnings") {
				t.Errorf("%s: dockerd's answer reached the client: %q", tc.name, r.body)
			}
		} else {
			want(t, tc.name+": status", r.StatusCode, tc.status)
			want(t, tc.name+": body", r.body, tc.body)
			if r.ContentLength != int64(len(tc.body)) || len(r.TransferEncoding) > 0 {
				t.Errorf("%s: Content-Length %d, Transfer-Encoding %v; want Content-Length %d", tc.name, r.ContentLength, r.TransferEncoding, len(tc.body))
			}
		}
		if r.Close {
			t.Fatalf("%s: the connection is closed", tc.name)
		}
	}
	calls.mu.Lock()
	seen, removed := calls.seen, calls.removed
	calls.mu.Unlock()
	if len(seen) != 6 || seen[0] != "Created "+created || seen[2] != "Created "+created || !strings.HasPrefix(seen[4], "Not Found ") {
		t.Errorf("Verify saw %q", seen)
	}
	if len(removed) != 1 {
		t.Errorf("removed %v, want the swapped container once", removed)
	}
	recs := finals(p.finalRecords())
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6", len(recs))
	}
	for i, w := range []struct {
		decision string
		status   int
		objectID string
	}{
		{"allow", 201, verifyID},
		{"error", 409, verifyID},
		{"allow", 201, verifyID},
		{"error", 502, verifyID},
		{"allow", 404, ""},
		{"allow", 201, verifyID},
	} {
		want(t, "decision of record "+strconv.Itoa(i), recs[i].Decision, w.decision)
		want(t, "status of record "+strconv.Itoa(i), recs[i].Status, w.status)
		want(t, "object_id of record "+strconv.Itoa(i), recs[i].ObjectID, w.objectID)
	}
	if !strings.Contains(recs[1].Reason, "changed between the decision and the create") {
		t.Errorf("reason of the swapped create: %q", recs[1].Reason)
	}
}

// TestVerifiedAnswerTooLargeIs502: an answer too large to check is never
// passed on unchecked.
func TestVerifiedAnswerTooLargeIs502(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"Id":"` + strings.Repeat("a", maxVerifiedBody) + `"}`))
	}))
	var calls verifyCalls
	p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{verify: calls.hook}))
	c := p.dial()
	r := c.roundTrip("POST", createRequest("ok"))
	wantDockerError(t, r, http.StatusBadGateway, "cannot be checked")
	c.expectEOF()
	if len(calls.seen) != 0 {
		t.Errorf("Verify ran on a cut answer: %q", calls.seen)
	}
}

// TestVerifiedNoContent: a checked answer without content (the 204 of a
// container rename or remove, whose names the decision drops once dockerd
// answered) reaches the client as dockerd sent it, with no
// Content-Length a 204 must not have, on a connection that stays in step.
func TestVerifiedNoContent(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.WriteHeader(http.StatusNoContent)
	}))
	var calls verifyCalls
	p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{verify: calls.hook}))
	c := p.dial()
	for _, raw := range []string{
		"DELETE /v1.41/containers/foo?force=1 HTTP/1.1\r\nHost: docker\r\n\r\n",
		"POST /v1.41/containers/foo/rename?name=bar HTTP/1.1\r\nHost: docker\r\n\r\n",
	} {
		r := c.roundTrip(strings.Fields(raw)[0], raw)
		want(t, "status", r.StatusCode, http.StatusNoContent)
		if cl, ok := r.Header["Content-Length"]; ok {
			t.Errorf("%s: a 204 with Content-Length %q", strings.Fields(raw)[0], cl)
		}
		if r.body != "" || r.Close {
			t.Fatalf("body %q, close %v: want none, and the connection kept", r.body, r.Close)
		}
	}
	calls.mu.Lock()
	defer calls.mu.Unlock()
	if len(calls.seen) != 2 || calls.seen[0] != "No Content " {
		t.Errorf("Verify saw %q, want both answers", calls.seen)
	}
}
