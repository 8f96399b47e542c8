package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestSetSettingsAppliesToNewConnections lowers the body limit while the
// server runs: a new connection gets 413 above the new limit, a connection
// accepted before keeps the limit it started with.
func TestSetSettingsAppliesToNewConnections(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, pingHandler())
	lim := DefaultLimits()
	lim.MaxBodyBytes = 4096
	p := startProxy(t, dir, up.upstream(), withLimits(lim))

	old := p.dial()
	if r := old.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"); r.StatusCode != http.StatusOK {
		t.Fatalf("ping: %d %s", r.StatusCode, r.body)
	}

	st := p.srv.Settings()
	st.Limits.MaxBodyBytes = 1000
	p.srv.SetSettings(st)
	if got := p.srv.Settings().Limits.MaxBodyBytes; got != 1000 {
		t.Fatalf("Settings after SetSettings: max body %d", got)
	}

	body := `{"Image":"busybox","Env":["X=` + strings.Repeat("a", 2000) + `"]}`
	req := "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"

	fresh := p.dial()
	wantDockerError(t, fresh.roundTrip("POST", req), http.StatusRequestEntityTooLarge, "1000")

	if r := old.roundTrip("POST", req+body); r.StatusCode == http.StatusRequestEntityTooLarge {
		t.Fatalf("a connection accepted before the change got the new limit: %d %s", r.StatusCode, r.body)
	}
}
