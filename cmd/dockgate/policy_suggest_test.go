package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/audit"
)

// The flow the rollout walks through: suggest from an audit-mode trail,
// check the directory, run its tests, replay the trail under it.
func TestPolicySuggestFlow(t *testing.T) {
	dir := t.TempDir()
	trail := filepath.Join(dir, "audit.log")
	l, err := audit.Open(trail)
	if err != nil {
		t.Fatal(err)
	}
	jenkins := &audit.Caller{UID: 1001, GID: 1001, User: "jenkins", Groups: []string{"jenkins"}}
	would := func(kind, value string) audit.FactResult {
		return audit.FactResult{Kind: kind, Value: value, Decision: "deny", Rule: "no rule allows it"}
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i, r := range []audit.Record{
		{Method: "GET", Path: "/_ping", Action: "system.ping", Facts: []audit.FactResult{would("endpoint", "system.ping")}, Status: 200},
		{Method: "POST", Path: "/v1.41/containers/create?name=job-1", Action: "container.create", Status: 201, ObjectID: strings.Repeat("a", 64),
			Facts: []audit.FactResult{would("endpoint", "container.create"), would("image", "reg.example.com/team/app:1"), would("privileged", "container")}},
		{Method: "POST", Path: "/v1.41/containers/job-1/start", Action: "container.start", Facts: []audit.FactResult{would("endpoint", "container.start")}, Status: 204},
	} {
		r.Time, r.RequestID, r.Caller, r.Decision, r.WouldDeny = at.Add(time.Duration(i)*time.Second), "r", jenkins, audit.DecisionAllow, true
		l.Write(&r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	garbled := filepath.Join(dir, "garbled.log")
	b, err := os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbled, append([]byte("not a record\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "suggested")
	steps := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"suggest writes the directory", []string{"policy", "suggest", "--config", "", "--out", out, trail}, 0, "1 of them commented out (root on the host, or others' objects)"},
		{"suggest does not write over it", []string{"policy", "suggest", "--config", "", "--out", out, trail}, 2, ""},
		{"check accepts it", []string{"check", "--config", "", "--policy", out}, 0, "ok: "},
		{"its tests pass", []string{"policy", "test", out}, 0, "PASS"},
		// The privileged create's row is commented out: replay says so.
		{"replay refuses only the row left commented out", []string{"policy", "replay", "--config", "", "--policy", out, trail}, 1, "privileged container"},
		{"a line that is not a record stops it", []string{"policy", "suggest", "--config", "", garbled}, 2, ""},
		{"--skip-bad lists it and reads on", []string{"policy", "suggest", "--config", "", "--skip-bad", "--out", filepath.Join(dir, "again"), garbled}, 0, "skipped " + garbled + ":1: not an audit record"},
		{"without --out the rows go to stdout", []string{"policy", "suggest", "--config", "", trail}, 0, "p, user:jenkins, image, reg.example.com/team/app:*, allow"},
	}
	for _, s := range steps {
		var stdout, stderr bytes.Buffer
		code := run(s.args, &stdout, &stderr)
		if code != s.code || !strings.Contains(stdout.String(), s.want) {
			t.Fatalf("%s: exit %d (want %d), output lacks %q?\nstdout: %s\nstderr: %s", s.name, code, s.code, s.want, stdout.String(), stderr.String())
		}
	}
	text, err := os.ReadFile(filepath.Join(out, "suggested.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "\n# p, user:jenkins, privileged, container, allow\n") {
		t.Errorf("the privileged row is not commented out:\n%s", text)
	}
}
