package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
	"github.com/dockgate/dockgate/internal/syncbuf"
)

// Exactly one final record per request whatever becomes of
// it, plus exactly one "phase":"start" record for each stream and hijacked
// session that began. The return paths this covers:
//
//	serve:           Identify fails (refuseUnidentified); the head cannot
//	                 be read: malformed 400, oversized 431, slow 408, cut
//	                 short (refuseMalformed); idle close (no request, no
//	                 record); a caller at a connection limit 503
//	                 (refuseLoad).
//	handle:          no route (refuse); audit sink down 503 (refuse);
//	                 body too large 413 (refuse); body cut short (finish,
//	                 client_aborted);
//	                 policy deny / unknown endpoint 403 (refuse); allow
//	                 (forward).
//	forward:         roundTrip fails: dockerd down 502 (finish), bad body
//	                 framing (refuse); hijack whose body failed (finish);
//	                 hijack; unasked 101 502 (finish); stream start record
//	                 then copyResponse; copyResponse then finish.
//	copyResponse:    complete; client gone before the head, during the
//	                 body, after it; dockerd broke off (error).
//	hijack:          client gone before the session (finish); session
//	                 start record, splice, final record.
//
// Every one of them ends in exactly one cn.finish (or Audit.Write of the
// final record); the start records are written only by forward (streams)
// and hijack (sessions), each once.

// completenessDockerd answers per path, raw, so that it can misbehave.
func completenessDockerd(t *testing.T, dir string) *fakeDockerd {
	return newRawDockerd(t, dir, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequestRaw(br)
			if err != nil {
				return
			}
			p := req.URL.Path
			switch {
			case strings.HasSuffix(p, "/_ping"):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
			case strings.HasSuffix(p, "/containers/die/json"):
				// dockerd dies in the middle of its answer.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Id\":")
				return
			case strings.HasSuffix(p, "/containers/json"):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n[]\n")
			case strings.HasSuffix(p, "/events"):
				ev := `{"status":"start"}` + "\n"
				chunk := strconv.FormatInt(int64(len(ev)), 16) + "\r\n" + ev + "\r\n"
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk)
				if req.URL.Query().Get("until") != "" {
					io.WriteString(c, "0\r\n\r\n")
					continue
				}
				// A follow stream: quiet until the client goes (the proxy
				// then closes this connection).
				io.Copy(io.Discard, br)
				return
			case strings.HasSuffix(p, "/attach"):
				io.WriteString(c, head101+"out")
				io.Copy(io.Discard, br)
				return
			case strings.HasSuffix(p, "/exec/e1/start"):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nexec output")
				return
			case strings.HasSuffix(p, "/exec/e1/json"):
				body := `{"ID":"e1","Running":false,"ExitCode":3}`
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
			default:
				io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
			}
		}
	})
}

// failNSink fails its next n writes, then works.
type failNSink struct {
	mu sync.Mutex
	n  int
	sb syncbuf.Buffer
}

func (s *failNSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	fail := s.n > 0
	if fail {
		s.n--
	}
	s.mu.Unlock()
	if fail {
		return 0, io.ErrShortWrite
	}
	return s.sb.Write(p)
}

func (s *failNSink) failNext(n int) {
	s.mu.Lock()
	s.n = n
	s.mu.Unlock()
}

// auditRecordsOf parses the records (not the segment headers) of a log.
func auditRecordsOf(t *testing.T, log string) []auditLine {
	t.Helper()
	var out []auditLine
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var r auditLine
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Type == "audit" {
			out = append(out, r)
		}
	}
	return out
}

type outcome struct {
	decision string
	status   int
}

func TestEveryRequestHasExactlyOneFinalRecord(t *testing.T) {
	small := Limits{MaxRequestLine: 1024, MaxHeaderBytes: 1024, MaxBodyBytes: 1024}
	cases := []struct {
		name   string
		opts   []proxyOption
		drive  func(t *testing.T, p *testProxy, up *fakeDockerd)
		down   bool // dockerd is not there
		finals []outcome
		starts int
		check  func(t *testing.T, final auditLine)
	}{
		{name: "allowed",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				want(t, "ping", p.dial().roundTrip("GET", pingReq).body, "OK")
			},
			finals: []outcome{{audit.DecisionAllow, 200}}},
		{name: "refused by policy",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				p.dec.setRefuse(refuseAction("container.list"))
				wantDockerError(t, p.dial().roundTrip("GET", "GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n"), 403)
			},
			finals: []outcome{{audit.DecisionDeny, 403}}},
		{name: "unknown endpoint",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				wantDockerError(t, p.dial().roundTrip("GET", "GET /v1.41/no/such/thing HTTP/1.1\r\nHost: docker\r\n\r\n"), 403)
			},
			finals: []outcome{{audit.DecisionDeny, 403}}},
		{name: "malformed head",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				wantDockerError(t, c.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost docker\r\n\r\n"), 400)
				c.expectEOF()
			},
			finals: []outcome{{audit.DecisionError, 400}}},
		{name: "oversized head", opts: []proxyOption{withLimits(small)},
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				r := c.roundTrip("GET", "GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Big: "+strings.Repeat("a", 2048)+"\r\n\r\n")
				wantDockerError(t, r, http.StatusRequestHeaderFieldsTooLarge)
			},
			finals: []outcome{{audit.DecisionError, 431}}},
		{name: "oversized body", opts: []proxyOption{withLimits(small)},
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				r := c.roundTrip("POST", "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n")
				wantDockerError(t, r, http.StatusRequestEntityTooLarge)
			},
			finals: []outcome{{audit.DecisionError, 413}}},
		{name: "header timeout", opts: []proxyOption{withHeaderTimeout(200 * time.Millisecond)},
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				c.send("GET /v1.41/_ping HTTP/1.1\r\n")
				wantDockerError(t, c.read("GET"), http.StatusRequestTimeout)
			},
			finals: []outcome{{audit.DecisionError, 408}}},
		{name: "client closes in the middle of the head",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				c.send("GET /v1.41/_ping HTTP/1.1\r\nHo")
				c.c.CloseWrite()
				c.expectEOF()
			},
			finals: []outcome{{audit.DecisionError, 400}}},
		{name: "upstream down", down: true,
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				wantDockerError(t, p.dial().roundTrip("GET", pingReq), http.StatusBadGateway, "cannot reach dockerd")
			},
			finals: []outcome{{audit.DecisionError, 502}}},
		{name: "upstream dies mid-response",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				c.send("GET /v1.41/containers/die/json HTTP/1.1\r\nHost: docker\r\n\r\n")
				resp := c.readHead("GET")
				want(t, "status", resp.StatusCode, 200)
				if _, err := io.ReadAll(resp.Body); err == nil {
					t.Error("a cut response read whole")
				}
			},
			finals: []outcome{{audit.DecisionError, 200}},
			check: func(t *testing.T, r auditLine) {
				if !strings.Contains(r.Reason, "broke off") {
					t.Errorf("reason %q", r.Reason)
				}
			}},
		{name: "client leaves mid-stream",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				c.send("GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
				resp := c.readHead("GET")
				line, err := bufio.NewReader(resp.Body).ReadString('\n')
				if err != nil || !strings.Contains(line, "start") {
					t.Fatalf("first event %q, %v", line, err)
				}
				p.waitRecords(1) // the start record
				c.c.Close()
				p.waitRecords(2)
			},
			finals: []outcome{{audit.DecisionAllow, 200}}, starts: 1,
			check: func(t *testing.T, r auditLine) {
				if !strings.Contains(r.Reason, "client went away") {
					t.Errorf("reason %q", r.Reason)
				}
			}},
		{name: "stream start and end",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				r := p.dial().roundTrip("GET", "GET /v1.41/events?since=1&until=2 HTTP/1.1\r\nHost: docker\r\n\r\n")
				want(t, "events", r.body, `{"status":"start"}`+"\n")
			},
			finals: []outcome{{audit.DecisionAllow, 200}}, starts: 1},
		{name: "hijack start and end",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				c.send(attachUpgrade + "in")
				want(t, "status", c.readHead("POST").StatusCode, 101)
				c.c.CloseWrite()
				out, _ := io.ReadAll(c.br)
				want(t, "output", string(out), "out")
			},
			finals: []outcome{{audit.DecisionAllow, 101}}, starts: 1,
			check: func(t *testing.T, r auditLine) {
				if !r.Hijacked {
					t.Error("not marked hijacked")
				}
			}},
		{name: "exec start and end",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				c.send("POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
				want(t, "status", c.readHead("POST").StatusCode, 200)
				c.c.CloseWrite()
				out, _ := io.ReadAll(c.br)
				want(t, "output", string(out), "exec output")
				// The client is gone; the record waits for the exit code.
				// Stopping the proxy (a hard stop) would cancel the question.
				p.waitRecords(2)
			},
			finals: []outcome{{audit.DecisionAllow, 200}}, starts: 1,
			check: func(t *testing.T, r auditLine) {
				if r.ExitCode == nil || *r.ExitCode != 3 {
					t.Errorf("exit code %v, want 3", r.ExitCode)
				}
			}},
		{name: "caller cannot be identified",
			opts: []proxyOption{withIdentify(func(net.Conn) (*Caller, error) { return nil, errors.New("no peer credentials") })},
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				wantDockerError(t, c.read(""), 403, "cannot identify caller")
			},
			finals: []outcome{{audit.DecisionError, 403}}},
		{name: "client closes in the middle of the body",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				c := p.dial()
				c.send("POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Image\":")
				c.c.CloseWrite()
				c.expectEOF()
			},
			// Nothing was refused and nobody was answered.
			finals: []outcome{{audit.DecisionAllow, 0}},
			check: func(t *testing.T, r auditLine) {
				if r.Outcome != audit.OutcomeClientAborted || r.BytesIn != 9 || !strings.Contains(r.Reason, "after 9 bytes") {
					t.Errorf("outcome %q, bytes_in %d, reason %q", r.Outcome, r.BytesIn, r.Reason)
				}
			}},
		{name: "dockgate panics while serving",
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				p.dec.setRefuse(func(*authz.Match, *authz.Request) bool { panic("a bug") })
				c := p.dial()
				c.send(pingReq)
				c.expectEOF()
			},
			finals: []outcome{{audit.DecisionError, 500}},
			check: func(t *testing.T, r auditLine) {
				if !strings.Contains(r.Reason, "a bug") {
					t.Errorf("reason %q", r.Reason)
				}
			}},
		{name: "busy", opts: []proxyOption{withConnLimits(ConnLimits{Max: 1})},
			drive: func(t *testing.T, p *testProxy, _ *fakeDockerd) {
				held := p.dial()
				want(t, "ping", held.roundTrip("GET", pingReq).body, "OK")
				p.waitRecords(1)
				c := p.dial()
				r, err := http.ReadResponse(c.br, nil)
				if err != nil {
					t.Fatal(err)
				}
				want(t, "status", r.StatusCode, 503)
			},
			finals: []outcome{{audit.DecisionAllow, 200}, {audit.DecisionError, 503}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			up := completenessDockerd(t, dir)
			u := up.upstream()
			if tc.down {
				up.stop()
				u = Upstream{URL: "unix://" + filepath.Join(dir, "gone.sock"), Network: "unix", Address: filepath.Join(dir, "gone.sock")}
			}
			p := startProxy(t, dir, u, tc.opts...)
			tc.drive(t, p, up)
			recs := p.finalRecords()
			checkComplete(t, recs, tc.finals, tc.starts)
			if tc.check != nil && len(finals(recs)) > 0 {
				fs := finals(recs)
				tc.check(t, fs[len(fs)-1])
			}
		})
	}

	// The audit sink is down: the 503 refusal's record is written once the
	// sink works again (here, at the refusal's own write, after the
	// failed probe).
	t.Run("audit fail 503", func(t *testing.T) {
		dir := shortDir(t)
		up := completenessDockerd(t, dir)
		sink := &failNSink{}
		l := audit.NewLogger(sink)
		p := startProxy(t, dir, up.upstream(), withAudit(l))
		sink.failNext(2)
		l.Write(&audit.Record{RequestID: "lost", Decision: audit.DecisionAllow}) // fails: the sink is broken
		wantDockerError(t, p.dial().roundTrip("GET", pingReq), http.StatusServiceUnavailable, "audit log unavailable")
		p.shutdown()
		log := sink.sb.String()
		checkComplete(t, auditRecordsOf(t, log), []outcome{{audit.DecisionError, 503}}, 0)
		if !strings.Contains(log, `"lost":1`) {
			t.Errorf("the lost record is not counted:\n%s", log)
		}
	})
}

func checkComplete(t *testing.T, recs []auditLine, wantFinals []outcome, wantStarts int) {
	t.Helper()
	var got []outcome
	starts := map[string]int{}
	ids := map[string]int{}
	for _, r := range recs {
		if r.Phase == audit.PhaseStart {
			starts[r.RequestID]++
			continue
		}
		ids[r.RequestID]++
		got = append(got, outcome{r.Decision, r.Status})
	}
	if len(got) != len(wantFinals) {
		t.Fatalf("final records %+v, want %+v", got, wantFinals)
	}
	for i := range got {
		if got[i] != wantFinals[i] {
			t.Errorf("final record %d: %+v, want %+v", i, got[i], wantFinals[i])
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("request %s has %d final records", id, n)
		}
	}
	n := 0
	for id, k := range starts {
		n += k
		if k != 1 || ids[id] != 1 {
			t.Errorf("request %s: %d start records, %d final", id, k, ids[id])
		}
	}
	if n != wantStarts {
		t.Errorf("%d start records, want %d", n, wantStarts)
	}
}
