package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
)

func auditTrail(t *testing.T, path string, o audit.Options) {
	t.Helper()
	l, err := audit.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i, c := range []struct {
		user, action, decision, image string
		status                        int
	}{
		{"alice", "container.create", "allow", "docker.io/library/nginx:latest", 201},
		{"bob", "container.create", "deny", "evil.example/miner:1", 403},
		{"alice", "container.list", "allow", "", 200},
		{"", "image.list", "allow", "", 200},
	} {
		r := &audit.Record{Time: base.Add(time.Duration(i) * time.Minute), RequestID: fmt.Sprint("r", i),
			Caller: &audit.Caller{UID: uint32(1000 + i), User: c.user}, Method: "GET", Path: "/v1.47/x",
			Action: c.action, Decision: c.decision, Status: c.status}
		if c.image != "" {
			r.Facts = []policy.FactResult{{Kind: "image", Value: c.image, Decision: c.decision}}
			if c.decision == "allow" {
				r.ObjectID = "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
			} else {
				r.Reason = "user:bob may not run evil.example/miner:1: no rule allows it"
			}
		}
		l.Write(r)
	}
	l.Close()
}

func runAudit(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"audit"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	auditTrail(t, path, audit.Options{})
	auditTrail(t, path, audit.Options{}) // a restart
	code, out, errs := runAudit("verify", path)
	if code != 0 || !strings.HasPrefix(out, "ok: 8 records, last seq 8, last hash ") {
		t.Fatalf("verify: %d %q %q", code, out, errs)
	}
	last := strings.TrimSpace(out[strings.LastIndex(out, " ")+1:])
	if code, out, _ := runAudit("verify", "--anchor", "8:"+last, path); code != 0 {
		t.Fatalf("anchor: %d %s", code, out)
	}

	b, _ := os.ReadFile(path)
	tampered := filepath.Join(dir, "tampered.log")
	os.WriteFile(tampered, bytes.Replace(b, []byte(`"decision":"deny"`), []byte(`"decision":"allow"`), 1), 0o600)
	code, out, _ = runAudit("verify", tampered)
	if code != 1 || !strings.Contains(out, "FAIL: "+tampered+":3: hash mismatch") {
		t.Fatalf("tampered: %d %q", code, out)
	}
	if code, _, _ := runAudit("verify"); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
	if code, _, _ := runAudit("verify", "--anchor", "nope", path); code != 2 {
		t.Errorf("bad anchor: exit %d", code)
	}

	// HMAC.
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("a-secret-key-of-some-length\n"), 0o600)
	key, err := audit.ReadHMACKey(keyFile)
	if err != nil || string(key) != "a-secret-key-of-some-length" {
		t.Fatalf("key %q %v", key, err)
	}
	hm := filepath.Join(dir, "hmac.log")
	auditTrail(t, hm, audit.Options{HMACKey: key})
	if code, out, _ := runAudit("verify", "--hmac-key", keyFile, hm); code != 0 || !strings.HasPrefix(out, "ok: 4 records") {
		t.Fatalf("hmac: %d %q", code, out)
	}
	if code, out, _ := runAudit("verify", hm); code != 1 || !strings.Contains(out, "--hmac-key") {
		t.Fatalf("hmac without key: %d %q", code, out)
	}
}

func TestAuditQueryAndSummaryCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	auditTrail(t, path, audit.Options{})

	code, out, errs := runAudit("query", path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[2], "bob") ||
		!strings.Contains(lines[2], "image=evil.example/miner:1") && !strings.Contains(lines[2], "may not run evil.example/miner:1") ||
		!strings.Contains(lines[4], "uid:1003") {
		t.Fatalf("query: %d %q %q", code, out, errs)
	}
	code, out, _ = runAudit("query", "--json", "--decision", "deny", path)
	var r audit.Entry
	if code != 0 || strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &r) != nil || r.Caller.User != "bob" || r.Seq != 2 {
		t.Fatalf("query --json: %d %q", code, out)
	}
	for _, c := range []struct {
		args []string
		n    int
	}{
		{[]string{"--user", "alice"}, 2},
		{[]string{"--uid", "1003"}, 1},
		{[]string{"--action", "container.*"}, 3},
		{[]string{"--image", "docker.io/*"}, 1},
		{[]string{"--object", "4f1c9a2e8b7d"}, 1},
		{[]string{"--since", "2026-11-26T10:01:00Z", "--until", "2026-11-26T10:03:00Z"}, 2},
		{[]string{"--since", "2026-11-27"}, 0},
	} {
		code, out, errs := runAudit(append(append([]string{"query", "--json"}, c.args...), path)...)
		if n := strings.Count(out, "\n"); code != 0 || n != c.n {
			t.Errorf("query %v: exit %d, %d records, want %d %s", c.args, code, n, c.n, errs)
		}
	}
	// Flags after the files work too.
	if code, out, _ := runAudit("query", path, "--json", "--user", "bob"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("flags after files: %d %q", code, out)
	}
	for _, bad := range [][]string{{"query", "--uid", "x", path}, {"query", "--decision", "maybe", path}, {"query", "--since", "yesterday", path}, {"query"}} {
		if code, _, _ := runAudit(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, _, errs := runAudit("query", filepath.Join(t.TempDir(), "missing")); code != 1 || errs == "" {
		t.Errorf("missing file: %d %q", code, errs)
	}

	code, out, _ = runAudit("summary", path)
	for _, want := range []string{"alice: 2 requests, 0 refused", "bob: 1 requests, 1 refused", "no rule allows image",
		"docker.io/library/nginx:latest (1 allowed)", "evil.example/miner:1 (1 refused)", "busiest actions:", "uid:1003: 1 requests"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("summary exit %d", code)
	}
	if code, out, _ := runAudit("help"); code != 0 || !strings.Contains(out, "dockgate audit verify") {
		t.Errorf("help: %d", code)
	}
}
