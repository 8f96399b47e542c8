package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

func startupRecord() *PolicyRecord {
	return &PolicyRecord{
		Time: genBase, Result: PolicyApplied, Trigger: "startup", Source: "/etc/dockgate/policy",
		PolicyHash: "sha256:1111", Files: []PolicyFile{{Name: "ci.csv", SHA256: "ab12"}},
		RowsAdded: []string{"ci.csv:1: p, *, endpoint, system.ping, allow", `ci.csv:2: p, "role:ci", image, "a,b", allow`},
	}
}

// policyTrail writes a trail with HMAC: a startup policy record, requests,
// a signal reload, a failed reload and more requests.
func policyTrail(t *testing.T, key []byte) (string, []*PolicyRecord) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{HMACKey: key})
	if err != nil {
		t.Fatal(err)
	}
	recs := []*PolicyRecord{startupRecord(),
		{Time: genBase.Add(time.Minute), Result: PolicyApplied, Trigger: "signal", Signal: "SIGHUP", Source: "/etc/dockgate/policy",
			PolicyHash: "sha256:2222", PreviousHash: "sha256:1111", Files: []PolicyFile{{Name: "ci.csv", SHA256: "cd34"}},
			RowsAdded: []string{"ci.csv:3: p, *, endpoint, container.*, deny"}, RowsRemoved: []string{"ci.csv:1: p, *, endpoint, system.ping, allow"}},
		{Time: genBase.Add(2 * time.Minute), Result: PolicyFailed, Trigger: "watcher", Source: "/etc/dockgate/policy",
			PolicyHash: "sha256:2222", Files: []PolicyFile{{Name: "ci.csv", SHA256: "ef56"}}, Error: "/etc/dockgate/policy/ci.csv:4: unknown effect \"alow\""},
	}
	l.WritePolicy(recs[0])
	for i := range 5 {
		l.Write(genRecord(i))
	}
	l.WritePolicy(recs[1])
	l.WritePolicy(recs[2])
	for i := 5; i < 10; i++ {
		l.Write(genRecord(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, recs
}

func TestPolicyRecordsAreChainedAndReadBack(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	path, want := policyTrail(t, key)

	res, err := VerifyFiles([]string{path}, VerifyOptions{HMACKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 13 || res.PolicyRecords != 3 || res.LastSeq != 13 {
		t.Fatalf("verify: %+v, want 13 records of which 3 policy records", res)
	}

	// A policy record changed after the fact breaks the chain.
	lines := readLines(t, path)
	for i, line := range lines {
		if strings.Contains(line, `"trigger":"signal"`) {
			lines[i] = strings.Replace(line, "container.*, deny", "container.*, allow", 1)
		}
	}
	tampered := filepath.Join(t.TempDir(), "tampered.log")
	writeLines(t, tampered, lines)
	if _, err := VerifyFiles([]string{tampered}, VerifyOptions{HMACKey: key}); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("a rewritten policy record verified: %v", err)
	}

	// Request queries never see policy records; --policy sees only them.
	reqs := queryAll(t, Filter{UID: AnyUID, Starts: true}, path)
	if len(reqs) != 10 {
		t.Fatalf("a request query returned %d records, want the 10 requests", len(reqs))
	}
	for _, e := range reqs {
		if e.Policy != nil || e.Type != "audit" {
			t.Fatalf("a request query returned a policy record: %+v", e)
		}
	}
	got := queryAll(t, Filter{UID: AnyUID, Policy: true}, path)
	if len(got) != 3 {
		t.Fatalf("a policy query returned %d records, want 3", len(got))
	}
	for i, e := range got {
		w := *want[i]
		w.Time = w.Time.UTC()
		if e.Type != PolicyType || e.Policy == nil || !e.Policy.Time.Equal(w.Time) {
			t.Fatalf("policy record %d: %+v", i, e)
		}
		g := *e.Policy
		g.Time = w.Time
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("policy record %d read back as\n%s\nwant\n%s", i, gb, wb)
		}
	}
	if got := queryAll(t, Filter{UID: AnyUID, Policy: true, Since: genBase.Add(30 * time.Second)}, path); len(got) != 2 {
		t.Fatalf("--since selected %d policy records, want 2", len(got))
	}

	var table bytes.Buffer
	for _, e := range got {
		FormatRow(&table, e)
	}
	rows := strings.Split(strings.TrimSpace(table.String()), "\n")
	for i, want := range []string{
		"startup            policy.load                applied  -      sha256:1111 +2 -0 rows",
		"signal:SIGHUP      policy.reload              applied  -      sha256:2222 +1 -1 rows",
		`watcher            policy.reload              failed   -      in force: sha256:2222; /etc/dockgate/policy/ci.csv:4: unknown effect "alow"`,
	} {
		if !strings.HasSuffix(rows[i], want) {
			t.Errorf("table row %d:\n%q\nwant it to end with\n%q", i, rows[i], want)
		}
	}

	s, err := Summarize([]string{path}, Filter{UID: AnyUID})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range s.Callers {
		n += c.Requests
	}
	if n != 9 || s.Policy.Failed != 1 || s.Policy.Applied["startup"] != 1 || s.Policy.Applied["signal"] != 1 || s.Policy.InForce != "sha256:2222" {
		t.Fatalf("summary: %d requests, policy %+v", n, s.Policy)
	}
	var out bytes.Buffer
	s.Write(&out, 3)
	if !strings.Contains(out.String(), "policy: 2 put in force (signal 1, startup 1), 1 reloads failed; last put in force: sha256:2222\n") {
		t.Fatalf("summary does not count the policy records:\n%s", out.String())
	}
}

// A restart after a policy record continues the chain from it.
func TestRestartAfterAPolicyRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for range 2 {
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		l.WritePolicy(startupRecord())
		l.Close()
	}
	res, err := VerifyFiles([]string{path}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2 || res.Segments != 2 {
		t.Fatalf("%+v", res)
	}
	b, _ := os.ReadFile(path)
	if bytes.Count(b, []byte(`"reason":"restart"`)) != 1 {
		t.Fatalf("the second start is not a restart of the chain:\n%s", b)
	}
}

func TestPolicyRecordShipping(t *testing.T) {
	var sb strings.Builder
	lg := NewLogger(&sb)
	lg.WritePolicy(startupRecord())
	failed := startupRecord()
	failed.Result, failed.Trigger, failed.Error = PolicyFailed, "watcher", "x.csv:1: bad"
	lg.WritePolicy(failed)
	lines := strings.SplitAfter(strings.TrimSuffix(sb.String(), "\n"), "\n")
	for i, tc := range []struct {
		prio    journal.Priority
		result  string
		trigger string
	}{
		{journal.PriNotice, PolicyApplied, "startup"},
		{journal.PriWarning, PolicyFailed, "watcher"},
	} {
		_, prio, vars := journalFields([]byte(lines[i]))
		if prio != tc.prio || vars["DOCKGATE_TYPE"] != PolicyType || vars["DOCKGATE_POLICY_RESULT"] != tc.result ||
			vars["DOCKGATE_TRIGGER"] != tc.trigger || vars["DOCKGATE_POLICY_HASH"] != "sha256:1111" || vars["DOCKGATE_SEQ"] != []string{"1", "2"}[i] {
			t.Errorf("line %d: prio %d, vars %v", i, prio, vars)
		}
		if _, ok := vars["DOCKGATE_DECISION"]; ok {
			t.Errorf("line %d: a policy record has a request decision: %v", i, vars)
		}
	}
	s := &SyslogSink{hostname: "h", pid: 1, network: "unixgram"}
	if msg := string(s.format(nil, []byte(lines[0]))); !strings.Contains(msg, " dockgate 1 policy - {\"type\":\"policy\",") {
		t.Errorf("syslog message: %s", msg)
	}
	if lineType([]byte(lines[1])) != PolicyType {
		t.Errorf("line type of %s", lines[1])
	}
}
