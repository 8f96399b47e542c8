package proxy

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/authz"
)

// bodyDecider allows every request and forwards body instead, with the
// rewrites it says it made.
type bodyDecider struct {
	body     []byte
	rewrites []string
}

func (d bodyDecider) Decide(ctx context.Context, m *authz.Match, req *authz.Request) authz.Decision {
	dec := authz.AllowAll{}.Decide(ctx, m, req)
	dec.Body, dec.Rewrites = d.body, d.rewrites
	return dec
}

// TestDelegatedSocketOnRecord: the body the decision gives is what
// dockerd gets, and the record names the binds it rewrote.
func TestDelegatedSocketOnRecord(t *testing.T) {
	dir := shortDir(t)
	up, seen := newRecordingDockerd(t, dir)
	sent := `{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}}`
	forwarded := `{"Image":"busybox","HostConfig":{"Binds":["/run/dockgate/docker.sock:/var/run/docker.sock"]}}`
	rewrites := []string{"bind /var/run/docker.sock:/var/run/docker.sock -> /run/dockgate/docker.sock:/var/run/docker.sock"}
	p := startProxy(t, dir, up.upstream(), withDecider(bodyDecider{body: []byte(forwarded), rewrites: rewrites}))
	c := p.dial()
	r := c.roundTrip("POST", "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(sent))+"\r\n\r\n"+sent)
	if r.StatusCode != 200 {
		t.Fatalf("status %d %q", r.StatusCode, r.body)
	}
	s := nextSeen(t, seen)
	if s.body != forwarded {
		t.Errorf("dockerd got %q, want %q", s.body, forwarded)
	}
	if !strings.Contains(s.head, "Content-Length: "+strconv.Itoa(len(forwarded))) {
		t.Errorf("dockerd got the head %q, want the forwarded body's length", s.head)
	}
	recs := finals(p.finalRecords())
	if len(recs) != 1 || !slices.Equal(recs[0].Rewrites, rewrites) {
		t.Fatalf("records %+v, want one with the rewrites %q", recs, rewrites)
	}
}
