package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/internal/syncbuf"
)

// TestReloadsWritePolicyRecords: startup, a changed policy, the same
// policy again, a broken policy and a broken config, each by SIGHUP's
// path, leave exactly the policy records they should, in one chain.
func TestReloadsWritePolicyRecords(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy")
	os.Mkdir(pol, 0o755)
	write := func(name, rows string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(pol, name), []byte(rows), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.csv", "p, *, endpoint, system.ping, allow\np, uid:0, *, **, allow\n")
	cfg := filepath.Join(dir, "dockgate.yaml")
	os.WriteFile(cfg, []byte("policy: policy\n"), 0o644)
	o, err := parseServe([]string{"--config", cfg}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadPolicy(o.policy)
	if err != nil {
		t.Fatal(err)
	}
	var trail syncbuf.Buffer
	sink := audit.NewLogger(&trail)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newConfigReloader(ctx, o, p, zerolog.Nop(), nil, nil, nil, sink)

	write("a.csv", "p, *, endpoint, system.ping, allow\np, uid:0, *, **, allow\np, *, endpoint, *, allow\np, *, endpoint, container.*, deny\n")
	if err := r.reload("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	changed := r.decider.Policy()
	if err := r.reload("SIGHUP"); err != nil { // nothing changed: no record
		t.Fatal(err)
	}
	write("a.csv", "p, *, endpoint, *, alow\n")
	if err := r.reload("SIGHUP"); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	write("a.csv", "p, *, endpoint, *, allow\n")
	os.WriteFile(cfg, []byte("policy: policy\npolicy_wacth: 2s\n"), 0o644)
	if err := r.reload("SIGHUP"); err == nil {
		t.Fatal("a broken config reloaded")
	}
	if r.decider.Policy().Hash != changed.Hash {
		t.Fatal("a failed reload changed the policy in force")
	}

	var recs []audit.PolicyRecord
	for _, line := range strings.Split(strings.TrimSpace(trail.String()), "\n") {
		var rec audit.PolicyRecord
		if !strings.HasPrefix(line, `{"type":"policy",`) || json.Unmarshal([]byte(line), &rec) != nil {
			t.Fatalf("not a policy record: %s", line)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 4 {
		t.Fatalf("%d policy records, want startup, the change and two failures:\n%s", len(recs), trail.String())
	}
	start, change, badPolicy, badConfig := recs[0], recs[1], recs[2], recs[3]
	if start.Trigger != "startup" || start.Result != "applied" || start.PolicyHash != p.Hash || start.PreviousHash != "" ||
		len(start.RowsAdded) != 2 || start.Source != pol || len(start.Files) != 1 || start.Files[0] != (audit.PolicyFile{Name: "a.csv", SHA256: p.FileSums[0].SHA256}) {
		t.Errorf("startup record: %+v", start)
	}
	if change.Trigger != "signal" || change.Signal != "SIGHUP" || change.PolicyHash != changed.Hash || change.PreviousHash != p.Hash ||
		strings.Join(change.RowsAdded, "|") != "a.csv:3: p, *, endpoint, *, allow|a.csv:4: p, *, endpoint, container.*, deny" || len(change.RowsRemoved) != 0 {
		t.Errorf("reload record: %+v", change)
	}
	if badPolicy.Result != "failed" || badPolicy.PolicyHash != changed.Hash || !strings.Contains(badPolicy.Error, "a.csv:1: unknown effect") ||
		len(badPolicy.Files) != 1 || len(badPolicy.RowsAdded) != 0 {
		t.Errorf("failed policy reload record: %+v", badPolicy)
	}
	if badConfig.Result != "failed" || badConfig.PolicyHash != changed.Hash || !strings.Contains(badConfig.Error, cfg+":2:") {
		t.Errorf("failed config reload record: %+v", badConfig)
	}

	// The records are a chain that verifies.
	path := filepath.Join(dir, "audit.log")
	os.WriteFile(path, []byte(trail.String()), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "verify", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok: 4 records") {
		t.Fatalf("audit verify: %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"audit", "query", "--policy", path}, &out, &errb); code != 0 || strings.Count(out.String(), "\n") != 5 ||
		!strings.Contains(out.String(), "signal:SIGHUP") {
		t.Fatalf("audit query --policy: %d\n%s%s", code, out.String(), errb.String())
	}
	errb.Reset()
	if code := run([]string{"audit", "query", "--policy", "--user", "root", path}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "only --since and --until apply") {
		t.Fatalf("--policy with a request filter: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"audit", "summary", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "policy: 2 put in force (signal 1, startup 1), 2 reloads failed") {
		t.Fatalf("audit summary: %d\n%s", code, out.String())
	}
}
