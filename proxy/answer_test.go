package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz"
)

// answerDecider answers every request as dockerd would have: 404 with
// dockerd's message (authz.Decision.Answer), its reason for the record.
type answerDecider struct{}

func (answerDecider) Decide(context.Context, *authz.Match, *authz.Request) authz.Decision {
	return authz.Decision{Status: http.StatusNotFound, Reason: "dockerd has no such object: No such container: nope", Answer: "No such container: nope"}
}

// TestDockerdAnswerIsGivenAsDockerdGivesIt: the client reads dockerd's
// message without dockgate's prefix, the record the reason.
func TestDockerdAnswerIsGivenAsDockerdGivesIt(t *testing.T) {
	dir := shortDir(t)
	up, _ := newRecordingDockerd(t, dir)
	p := startProxy(t, dir, up.upstream(), withDecider(answerDecider{}))
	c := p.dial()
	c.send("GET /v1.41/containers/nope/json HTTP/1.1\r\nHost: docker\r\n\r\n")
	r := c.read("GET")
	if r.StatusCode != http.StatusNotFound || strings.TrimSpace(r.body) != `{"message":"No such container: nope"}` {
		t.Fatalf("answer %d %s, want dockerd's 404 as dockerd gives it", r.StatusCode, r.body)
	}
	recs := p.waitRecords(1)
	if recs[0].Status != http.StatusNotFound || recs[0].Reason != "dockerd has no such object: No such container: nope" {
		t.Errorf("record: status %d reason %q", recs[0].Status, recs[0].Reason)
	}
}
