package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// drift never says "no drift" when it could not look: a dockerd it cannot
// reach, a trail that gives no period, are exit 2 (test/e2e/drift_test.go
// runs it against real dockerds).
func TestAuditDriftFailsClosed(t *testing.T) {
	dir := t.TempDir()
	trail := filepath.Join(dir, "audit.log")
	l, err := audit.Open(trail)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(&audit.Record{Time: time.Now().Add(-time.Minute), RequestID: "1", Caller: &audit.Caller{UID: 1000, User: "alice"},
		Method: "GET", Path: "/_ping", Action: "system.ping", Decision: audit.DecisionAllow, Status: 200})
	l.Close()
	empty := filepath.Join(dir, "empty.log")
	if l, err = audit.Open(empty); err != nil {
		t.Fatal(err)
	}
	l.Close()
	nowhere := "unix://" + filepath.Join(dir, "no-dockerd.sock")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"dockerd unreachable", []string{"--upstream", nowhere, trail}, "dockerd's events"},
		{"a trail without records and no --since", []string{"--upstream", nowhere, empty}, "--since"},
		{"no trail", []string{"--upstream", nowhere}, "TRAIL"},
		{"an unknown format", []string{"--upstream", nowhere, "--format", "yaml", trail}, "--format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"audit", "drift", "--config", "", "--timeout", "20s"}, tt.args...), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, want 2 with %q\nstdout: %s\nstderr: %s", code, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}
