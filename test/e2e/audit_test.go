package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawClient speaks plain HTTP/1.1 on a unix:// host, one connection per request.
func rawClient(host string) *http.Client {
	sock := strings.TrimPrefix(host, "unix://")
	return &http.Client{
		Timeout: cmdTimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}
}

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func rawDo(t *testing.T, host, method, path string, header http.Header, body []byte) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, "http://docker"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := rawClient(host).Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s on %s: body: %v", method, path, host, err)
	}
	return rawResponse{resp.StatusCode, resp.Header, b}
}

func TestHeadPingAnswersLikeDockerd(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		r := rawDo(s.t, s.side.host, http.MethodHead, "/_ping", nil, nil)
		if r.status != 200 || len(r.body) != 0 || r.header.Get("Api-Version") == "" {
			s.t.Errorf("%s: HEAD /_ping: %d %q %v", s.side.name, r.status, r.body, r.header)
		}
		s.note("HEAD /_ping", headerShape(r.header))
		s.expect(self(), "HEAD /_ping 200")
	})
}

func TestResponseHeadersPassThrough(t *testing.T) {
	compare(t, newCLI(t), nil, func(s *session) {
		for _, p := range []string{"/_ping", "/v1.41/version", "/v1.41/containers/e2e-no-such/json", "/v1.41/images/json"} {
			r := rawDo(s.t, s.side.host, http.MethodGet, p, nil, nil)
			s.note("GET "+p, headerShape(r.header)+" "+http.StatusText(r.status))
		}
		s.expect(self(), "GET /containers/e2e-no-such/json 404")
	})
}

// headerShape lists a response's headers except the ones that change by
// themselves (Date) or depend on the body's length.
func headerShape(h http.Header) string {
	var out []string
	for k, v := range h {
		switch k {
		case "Date":
			continue
		}
		out = append(out, k+": "+strings.Join(v, ", "))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// TestAuditRecordsCarryTheContractFields checks BRIEF §6 on requests whose
// every detail the test knows.
func TestAuditRecordsCarryTheContractFields(t *testing.T) {
	env := sharedWithDockgate(t)
	host := env.ProxyHost
	time.Sleep(200 * time.Millisecond) // the records of earlier tests' requests are written
	start := time.Now()
	name := unique(t, "c")
	const secret = "hunter2-e2e-secret"
	createBody := []byte(`{"Image":"` + image + `","Cmd":["true"],"Env":["TOKEN=` + secret + `"]}`)
	type req struct {
		method, path, action string
		body                 []byte
		header               http.Header
		status               int
	}
	reqs := []req{
		{"GET", "/_ping", "system.ping", nil, nil, 200},
		{"GET", "/v1.41/containers/json?all=1", "container.list", nil, nil, 200},
		{"POST", "/v1.41/containers/create?name=" + name, "container.create", createBody, nil, 201},
		{"GET", "/v1.41/containers/" + name + "/json", "container.inspect", nil, nil, 200},
		{"DELETE", "/v1.41/containers/" + name + "?force=1", "container.delete", nil, nil, 204},
		{"GET", "/v1.41/containers/" + name + "/json", "container.inspect", nil, nil, 404},
		{"GET", "/v1.41/images/json", "image.list", nil, http.Header{"X-Registry-Auth": {"eyJwYXNzd29yZCI6IiIgfQ" + secret}}, 200},
	}
	var createdID string
	for _, q := range reqs {
		r := rawDo(t, host, q.method, q.path, q.header, q.body)
		if r.status != q.status {
			t.Fatalf("%s %s: status %d, want %d: %s", q.method, q.path, r.status, q.status, r.body)
		}
		if q.action == "container.create" {
			var created struct{ Id string }
			_ = json.Unmarshal(r.body, &created)
			createdID = created.Id
		}
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)

	// Wait for the last request's record, then read them all.
	var mine []map[string]any
	deadline := time.Now().Add(auditWait)
	for {
		recs, err := env.Dockgate.AuditRecords()
		if err != nil {
			t.Fatal(err)
		}
		mine = mine[:0]
		for _, rec := range recs {
			ts, err := time.Parse(time.RFC3339Nano, fmt6(rec["time"]))
			if err == nil && !ts.Before(start.Add(-10*time.Millisecond)) && callerPid(rec) == os.Getpid() && !isStart(rec) {
				mine = append(mine, rec)
			}
		}
		if len(mine) >= len(reqs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(mine) != len(reqs) {
		t.Fatalf("%d requests, %d finished audit records: %v", len(reqs), len(mine), mine)
	}
	ids := map[string]bool{}
	used := map[int]bool{}
	for _, q := range reqs {
		where := q.method + " " + q.path
		var rec map[string]any
		for j, r := range mine {
			p := fmt6(r["path"])
			if !used[j] && r["method"] == q.method && (p == q.path || p == strings.Split(q.path, "?")[0]) && num(r["status"]) == q.status {
				rec, used[j] = r, true
				break
			}
		}
		if rec == nil {
			t.Errorf("%s: no audit record with this method, path and status %d among %v", where, q.status, mine)
			continue
		}
		if ts := fmt6(rec["time"]); !strings.Contains(ts, ".") {
			t.Errorf("%s: time %q has no fraction of a second", where, ts)
		}
		id := fmt6(rec["request_id"])
		if id == "" || ids[id] {
			t.Errorf("%s: request_id %q empty or not unique", where, id)
		}
		ids[id] = true
		c, _ := rec["caller"].(map[string]any)
		if num(c["uid"]) != os.Getuid() || num(c["gid"]) != os.Getgid() || c["user"] != "root" {
			t.Errorf("%s: caller %v, want uid %d gid %d user root", where, c, os.Getuid(), os.Getgid())
		}
		if groups, _ := c["groups"].([]any); !slices.Contains(groups, any("root")) {
			t.Errorf("%s: caller groups %v lack root", where, c["groups"])
		}
		if c["exe"] != exe {
			t.Errorf("%s: caller exe %v, want %s", where, c["exe"], exe)
		}
		if strings.HasPrefix(q.path, "/v1.41/") && rec["api_version"] != "1.41" {
			t.Errorf("%s: api_version %v, want 1.41", where, rec["api_version"])
		}
		if rec["action"] != q.action {
			t.Errorf("%s: action %v, want %s", where, rec["action"], q.action)
		}
		if !hasEndpointFact(rec, q.action) {
			t.Errorf("%s: facts %v lack {endpoint %s allow}", where, rec["facts"], q.action)
		}
		if rec["decision"] != "allow" {
			t.Errorf("%s: decision %v, want allow", where, rec["decision"])
		}
		if num(rec["status"]) != q.status {
			t.Errorf("%s: status %v, want %d", where, rec["status"], q.status)
		}
		if num(rec["bytes_in"]) != len(q.body) {
			t.Errorf("%s: bytes_in %v, want %d", where, rec["bytes_in"], len(q.body))
		}
		if _, ok := rec["bytes_out"].(float64); !ok {
			t.Errorf("%s: bytes_out %v is not a number", where, rec["bytes_out"])
		}
		if d, ok := rec["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("%s: duration_ms %v", where, rec["duration_ms"])
		}
		if rec["hijacked"] != false {
			t.Errorf("%s: hijacked %v, want false", where, rec["hijacked"])
		}
		if q.action == "container.create" && rec["object_id"] != createdID {
			t.Errorf("%s: object_id %v, want the new container's %s", where, rec["object_id"], createdID)
		}
	}
	for _, rec := range mine {
		if rec["path"] == "/_ping" && num(rec["bytes_out"]) != 2 {
			t.Errorf("GET /_ping: bytes_out %v, want 2 (OK)", rec["bytes_out"])
		}
	}
	raw, err := os.ReadFile(env.Dockgate.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Errorf("the audit log contains a secret (an Env value or X-Registry-Auth)")
	}
	for i, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var rec map[string]any
		// Besides records, the file holds the hash chain's segment headers
		// (one per start of dockgate) and the policy records (the policy
		// put in force at startup, and each reload); nothing else belongs
		// there.
		if err := json.Unmarshal(line, &rec); err != nil || (rec["type"] != "audit" && rec["type"] != "audit-segment" && rec["type"] != "policy") {
			t.Errorf("audit log line %d is neither an audit record, a chain segment header nor a policy record: %.200s", i+1, line)
			break
		}
	}
}

func hasEndpointFact(rec map[string]any, action string) bool {
	facts, _ := rec["facts"].([]any)
	for _, f := range facts {
		m, _ := f.(map[string]any)
		if m["kind"] == "endpoint" && m["value"] == action && m["decision"] == "allow" {
			return true
		}
	}
	return false
}

func fmt6(v any) string {
	s, _ := v.(string)
	return s
}

func TestOperationalLogIsJSONApartFromTheAudit(t *testing.T) {
	env := sharedWithDockgate(t)
	raw, err := os.ReadFile(env.Dockgate.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		n++
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil || rec["type"] != "log" {
			t.Errorf("dockgate's stderr line %d is not a JSON record with \"type\":\"log\": %.300s", i+1, line)
		}
	}
	if n == 0 {
		t.Errorf("dockgate logged nothing on stderr (not even that it serves)")
	}
}
