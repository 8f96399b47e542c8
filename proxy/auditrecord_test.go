package proxy

import (
	"bufio"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The audit log carries exactly one final record per request, with the
// fields of BRIEF §6, plus a start record for each hijacked session and
// long stream.
func TestAuditRecordsOnePerRequestWithTheContractFields(t *testing.T) {
	const containerID = "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
	dir := shortDir(t)
	up := newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequestRaw(br)
			if err != nil {
				return
			}
			switch {
			case strings.HasSuffix(req.URL.Path, "/_ping"):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
			case strings.HasSuffix(req.URL.Path, "/containers/create"):
				body := `{"Id":"` + containerID + `","Warnings":[]}` + "\n"
				io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
			case strings.HasSuffix(req.URL.Path, "/events"):
				ev := `{"status":"start"}` + "\n"
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+strconv.FormatInt(int64(len(ev)), 16)+"\r\n"+ev+"\r\n0\r\n\r\n")
			case strings.HasSuffix(req.URL.Path, "/attach"):
				io.WriteString(c, head101+"out")
				io.Copy(io.Discard, br)
				return
			}
		}
	})
	p := startProxy(t, dir, up.upstream(), withIdentify(Identify))
	p.dec.setRefuse(refuseAction("container.kill"))
	start := time.Now()

	c := p.dial()
	r := c.roundTrip("GET", "GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	want(t, "ping", r.body, "OK")
	create := `{"Image":"busybox","Env":["SECRET=hunter2"]}`
	r = c.roundTrip("POST", "POST /v1.41/containers/create?name=web HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(create))+"\r\n\r\n"+create)
	want(t, "create", r.StatusCode, 201)
	wantDockerError(t, c.roundTrip("POST", "POST /containers/web/kill HTTP/1.1\r\nHost: docker\r\n\r\n"), 403)
	r = c.roundTrip("GET", "GET /events?since=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
	want(t, "events", r.body, `{"status":"start"}`+"\n")
	p.waitRecords(5) // four final records and the events start record

	h := p.dial()
	h.send(attachUpgrade + "in!")
	h.readHead("POST")
	h.c.CloseWrite()
	out, _ := io.ReadAll(h.br)
	want(t, "attach output", string(out), "out")

	recs := p.finalRecords()
	fin := finals(recs)
	if len(fin) != 5 {
		t.Fatalf("%d final records, want 5: %+v", len(fin), recs)
	}
	var startRecs []auditLine
	for _, r := range recs {
		if r.Phase == "start" {
			startRecs = append(startRecs, r)
		} else if r.Phase != "" {
			t.Errorf("phase %q", r.Phase)
		}
	}
	if len(startRecs) != 2 || startRecs[0].Action != "system.events" || startRecs[1].Action != "container.attach" || !startRecs[1].Hijacked {
		t.Errorf("start records %+v, want one for events and one for the attach", startRecs)
	}

	ids := map[string]bool{}
	for i, r := range fin {
		if r.RequestID == "" || ids[r.RequestID] {
			t.Errorf("record %d: request_id %q empty or repeated", i, r.RequestID)
		}
		ids[r.RequestID] = true
		if r.Time.Before(start.Add(-time.Second)) || r.Time.After(time.Now()) {
			t.Errorf("record %d: time %v", i, r.Time)
		}
		if r.DurationMS < 0 {
			t.Errorf("record %d: duration %v", i, r.DurationMS)
		}
		if r.Caller == nil || r.Caller.UID != uint32(os.Geteuid()) || r.Caller.PID != int32(os.Getpid()) || r.Caller.Exe == "" {
			t.Errorf("record %d: caller %+v, want this process", i, r.Caller)
		}
	}
	for _, s := range startRecs {
		if !ids[s.RequestID] {
			t.Errorf("start record %s has no final record", s.RequestID)
		}
	}

	type row struct {
		method, path, action, apiVersion, decision string
		status                                     int
		in, out                                    int64
		hijacked                                   bool
		objectID                                   string
	}
	wantRows := []row{
		{"GET", "/v1.41/_ping", "system.ping", "1.41", "allow", 200, 0, 2, false, ""},
		{"POST", "/v1.41/containers/create?name=web", "container.create", "1.41", "allow", 201, int64(len(create)), int64(len(`{"Id":"` + containerID + `","Warnings":[]}` + "\n")), false, containerID},
		{"POST", "/containers/web/kill", "container.kill", "", "deny", 403, 0, 0, false, ""},
		{"GET", "/events?since=1", "system.events", "", "allow", 200, 0, int64(len(`{"status":"start"}` + "\n")), false, ""},
		{"POST", "/v1.41/containers/x/attach?stream=1&stdin=1&stdout=1", "container.attach", "1.41", "allow", 101, 3, 3, true, ""},
	}
	for i, w := range wantRows {
		r := fin[i]
		got := row{r.Method, r.Path, r.Action, r.APIVersion, r.Decision, r.Status, r.BytesIn, r.BytesOut, r.Hijacked, r.ObjectID}
		if got != w {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	if len(fin[2].Facts) != 1 || fin[2].Facts[0].Decision != "deny" || !strings.Contains(fin[2].Reason, "no rule allows it") {
		t.Errorf("refusal record facts %+v reason %q", fin[2].Facts, fin[2].Reason)
	}
	if strings.Contains(p.audit.String(), "hunter2") {
		t.Error("an Env value reached the audit log")
	}
}
