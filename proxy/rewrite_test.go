package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz"
)

// TestSpooledBodyRewritten: a decision that pins what a spooled body
// names (a build context's FROM lines) has dockerd get the rewritten body,
// with its own length; a rewrite that fails refuses the request, which
// never reaches dockerd, and a rewrite over the spool limit is a 413.
func TestSpooledBodyRewritten(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	rewrite := func(req *authz.Request) func(io.Writer) error {
		switch req.URL.Query().Get("t") {
		case "pinned":
			return func(w io.Writer) error {
				// Read the spooled body through the file the decision saw.
				b, err := io.ReadAll(io.NewSectionReader(req.BodyFile, 0, req.BodySize))
				if err != nil {
					return err
				}
				_, err = io.WriteString(w, strings.ReplaceAll(string(b), "FROM name", "FROM sha256:0123"))
				return err
			}
		case "broken":
			return func(io.Writer) error {
				return &authz.RouteError{Status: http.StatusBadRequest, Message: "build context: not a tar"}
			}
		case "huge":
			return func(w io.Writer) error {
				_, err := w.Write(make([]byte, 2<<20))
				return err
			}
		case "failing":
			return func(io.Writer) error { return errors.New("disk on fire") }
		}
		return nil
	}
	p := startProxy(t, dir, up.upstream(), withDecider(hookDecider{rewrite: rewrite}),
		withLimits(Limits{MaxRequestLine: 8 << 10, MaxHeaderBytes: 64 << 10, MaxBodyBytes: 1 << 20, MaxSpoolBytes: 1 << 20, SpoolDir: t.TempDir()}))
	c := p.dial()
	build := func(tag string) response {
		body := "FROM name\nRUN true\n"
		return c.roundTrip("POST", "POST /v1.41/build?t="+tag+" HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body)
	}
	for _, tc := range []struct {
		tag    string
		status int
		parts  []string
	}{
		{"broken", http.StatusBadRequest, []string{"not a tar"}},
		{"huge", http.StatusRequestEntityTooLarge, []string{"spool limit"}},
		{"failing", http.StatusBadRequest, []string{"disk on fire"}},
		{"pinned", http.StatusOK, nil},
		{"asis", http.StatusOK, nil},
	} {
		r := build(tc.tag)
		if tc.parts != nil {
			wantDockerError(t, r, tc.status, tc.parts...)
		} else {
			want(t, tc.tag+": status", r.StatusCode, tc.status)
		}
		if r.Close {
			t.Fatalf("%s: the connection is closed", tc.tag)
		}
	}
	s := nextSeen(t, seen)
	if !strings.HasPrefix(s.head, "POST /v1.41/build?t=pinned ") {
		t.Fatalf("dockerd got %q first; the refused builds must not reach it", s.head)
	}
	want(t, "forwarded body", s.body, "FROM sha256:0123\nRUN true\n")
	if !strings.Contains(s.head, "Content-Length: "+strconv.Itoa(len(s.body))+"\r\n") {
		t.Errorf("forwarded head without the rewritten length: %q", s.head)
	}
	want(t, "body forwarded as received", nextSeen(t, seen).body, "FROM name\nRUN true\n")
}
