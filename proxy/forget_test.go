package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/audit"
)

// A connection keeps the storage of its requests for the next one, but
// between requests it holds nothing of the last: not its long header
// lines, the body that was judged, its facts or its record.
func TestIdleConnectionHoldsNothingOfItsLastRequest(t *testing.T) {
	dir := shortDir(t)
	up := newHTTPDockerd(t, dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("OK"))
	}))
	p := startProxy(t, dir, up.upstream())
	p.dec.setRefuse(refuseAction("container.create"))
	c := p.dial()
	long := strings.Repeat("a", 32<<10)
	body := `{"Image":"busybox","Labels":{"x":"` + long + `"}}`
	c.send("POST /v1.41/containers/create?name=" + long + " HTTP/1.1\r\nHost: docker\r\nX-Long: " + long +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	if r := c.read(http.MethodPost); r.StatusCode != http.StatusForbidden {
		t.Fatalf("create answered %d %q, want the refusal", r.StatusCode, r.body)
	}
	if recs := p.waitRecords(1); len(recs[0].Facts) == 0 {
		t.Fatalf("the refusal has no facts on record: %+v", recs[0])
	}

	var cn *clientConn
	waitFor(t, "the connection to be idle", ioTimeout, func() bool {
		if idle := p.idleConns(); len(idle) == 1 {
			cn = idle[0]
		}
		return cn != nil
	})
	held := []string{}
	if h := &cn.prevHead.head; len(h.Fields) > 0 || len(h.Header) > 0 || h.Target != "" || h.URL != nil || h.valuesBuf != [8]string{} || h.fieldsBuf != [8]headerField{} {
		held = append(held, "its head")
	}
	if cn.req.Body != nil || cn.req.URL != nil || cn.req.Header != nil {
		held = append(held, "what was asked of the decider")
	}
	if cn.rec.Path != "" || cn.rec.Facts != nil || cn.rec.Reason != "" {
		held = append(held, "its record")
	}
	for _, f := range cn.facts[:cap(cn.facts)] {
		if f != (audit.FactResult{}) {
			held = append(held, "its facts")
			break
		}
	}
	if len(held) > 0 {
		t.Errorf("an idle connection holds %s", strings.Join(held, ", "))
	}

	// And the next request on it is served as if it were the first.
	p.dec.setRefuse(nil)
	c.send("GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	if r := c.read(http.MethodGet); r.StatusCode != http.StatusOK || r.body != "OK" {
		t.Fatalf("ping after the refusal: %d %q", r.StatusCode, r.body)
	}
	rec := p.waitRecords(2)[1]
	if rec.Action != "system.ping" || rec.Path != "/v1.41/_ping" || rec.Decision != audit.DecisionAllow || rec.Rewrites != nil {
		t.Errorf("the ping's record: %+v", rec)
	}
	if d := p.dec.all()[1]; d.Header.Get("X-Long") != "" || d.Body != nil || d.Target != "/v1.41/_ping" {
		t.Errorf("the ping was judged with what the create had: %s %q, X-Long %d bytes", d.Target, d.Body, len(d.Header.Get("X-Long")))
	}
}
