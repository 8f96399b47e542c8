package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
)

func TestPolicyReplayExitStatus(t *testing.T) {
	dir := t.TempDir()
	trail := filepath.Join(dir, "audit.log")
	l, err := audit.Open(trail)
	if err != nil {
		t.Fatal(err)
	}
	alice := &audit.Caller{UID: 1000, GID: 1000, User: "alice", Groups: []string{"alice"}}
	l.Write(&audit.Record{Time: time.Now(), RequestID: "1", Caller: alice, Method: "POST", Path: "/v1.41/containers/create", Action: "container.create",
		Facts: []audit.FactResult{
			{Kind: "endpoint", Value: "container.create", Decision: "allow", Rule: "p.csv:1: p, user:alice, endpoint, container.*, allow"},
			{Kind: "image", Value: "docker.io/library/busybox:latest", Decision: "allow", Rule: "p.csv:2: p, user:alice, image, **, allow"},
		}, Decision: audit.DecisionAllow, Status: 201})
	l.Close()
	garbled := filepath.Join(dir, "garbled.log")
	b, _ := os.ReadFile(trail)
	os.WriteFile(garbled, append([]byte("not a record\n"), b...), 0o600)

	policy := func(rows string) string {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "p.csv"), []byte(rows), 0o644)
		return d
	}
	same := policy("p, user:alice, endpoint, container.*, allow\np, user:alice, image, **, allow\n")
	stricter := policy("p, user:alice, endpoint, container.*, allow\np, user:alice, image, registry.example.com/**, allow\n")
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"a candidate that keeps what succeeded", []string{"--policy", same, trail}, 0, "ok: the candidate refuses no request that succeeded"},
		{"a candidate that refuses what succeeded", []string{"--policy", stricter, trail}, 1, "refused: image docker.io/library/busybox:latest: no rule allows it"},
		{"json output", []string{"--format", "json", "--policy", stricter, trail}, 1, `"newly_refused_succeeded": 1`},
		{"a line that is not a record stops the replay", []string{"--policy", same, garbled}, 2, ""},
		{"--skip-bad lists it and reads on", []string{"--skip-bad", "--policy", stricter, garbled}, 1, "garbled.log:1: not an audit record"},
		{"no candidate", []string{trail}, 2, ""},
		{"an unreadable trail", []string{"--policy", same, filepath.Join(dir, "missing.log")}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"policy", "replay", "--config", ""}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.out) {
				t.Errorf("output lacks %q:\n%s", tt.out, stdout.String())
			}
		})
	}
}

func TestCheckValidatesPolicyTests(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.csv"), []byte("p, *, endpoint, system.ping, allow\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "p_test.yaml"), []byte("tests:\n  - name: ping\n    as: [user:a]\n    method: GET\n    path: /_ping\n    expekt: allow\n"), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "--config", "", "--policy", dir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "p_test.yaml:6: unknown field \"expekt\"") {
		t.Fatalf("check of a malformed test file: exit %d\n%s", code, stderr.String())
	}
	os.WriteFile(filepath.Join(dir, "p_test.yaml"), []byte("tests:\n  - name: ping\n    as: [user:a]\n    method: GET\n    path: /_ping\n    expect: allow\n"), 0o644)
	stdout.Reset()
	if code := run([]string{"check", "--config", "", "--policy", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("check: exit %d\n%s", code, stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"policy", "test", dir}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "PASS: 1 cases") {
		t.Fatalf("policy test: exit %d\n%s", code, stdout.String())
	}
}

// Without TRAIL, the replay reads the config's audit log, its rotated
// (gzip) files first.
func TestPolicyReplayReadsTheConfiguredTrail(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	l, err := audit.Open(logPath, audit.Options{Rotate: audit.RotateOptions{MaxSize: 400, Compress: true}})
	if err != nil {
		t.Fatal(err)
	}
	bob := &audit.Caller{UID: 1001, GID: 1001, User: "bob"}
	for i := range 4 {
		l.Write(&audit.Record{Time: time.Now(), RequestID: fmt.Sprint(i), Caller: bob, Method: "GET", Path: "/_ping", Action: "system.ping",
			Facts: []audit.FactResult{{Kind: "endpoint", Value: "system.ping", Decision: "allow", Rule: "p.csv:1: p, user:bob, endpoint, system.ping, allow"}}, Decision: audit.DecisionAllow, Status: 200})
	}
	l.Close()
	if rotated, _ := filepath.Glob(logPath + ".2*.gz"); len(rotated) == 0 {
		t.Fatal("no rotated file")
	}
	config := filepath.Join(dir, "dockgate.yaml")
	os.WriteFile(config, []byte("audit:\n  log: audit.log\n"), 0o600)
	policy := filepath.Join(dir, "policy")
	os.Mkdir(policy, 0o755)
	os.WriteFile(filepath.Join(policy, "p.csv"), []byte("p, user:alice, endpoint, system.ping, allow\n"), 0o644)

	var stdout, stderr bytes.Buffer
	code := run([]string{"policy", "replay", "--config", config, "--policy", policy}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "replayed 4 requests") || !strings.Contains(stdout.String(), "newly refused: 4 (4 had succeeded)") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"policy", "replay", "--config", "", "--policy", policy}, &stdout, &stderr); code != 2 {
		t.Errorf("no TRAIL and no configured file: exit %d, want 2", code)
	}
}
