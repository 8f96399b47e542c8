package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func fullRecord() *Record {
	return &Record{
		Time:      time.Date(2026, 11, 26, 19, 4, 5, 123456789, time.FixedZone("CET", 3600)),
		RequestID: "a1b2c3d4-42",
		Phase:     PhaseStart,
		Caller: &Caller{
			UID: 1000, GID: 1001, PID: 4242,
			User: "jenkins", Groups: []string{"jenkins", "docker", "ci-runners"}, GIDs: []uint32{1001, 998, 4000},
			Exe: "/usr/bin/docker", Unit: "jenkins.service", Container: "4f1c9a2e8b7d", Cert: "ci.example.com",
			Creators: [][]string{{"user:jenkins", "*"}, {"uid:0"}},
		},
		Method:     "POST",
		Path:       "/v1.41/containers/create?name=web",
		APIVersion: "1.41",
		Action:     "container.create",
		Facts: []FactResult{
			{Kind: "endpoint", Value: "container.create", Decision: "allow", Rule: "p, role:ci, endpoint, *, allow"},
			{Kind: "bind", Value: "/etc", Decision: "deny"},
		},
		Decision:   DecisionDeny,
		WouldDeny:  true,
		Reason:     "user:jenkins may not bind /etc: no rule allows it",
		Outcome:    OutcomeClientAborted,
		Status:     403,
		BytesIn:    1234,
		BytesOut:   98765,
		DurationMS: 1.234,
		Hijacked:   true,
		ObjectID:   "4f1c9a2e8b7d6c5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f",
		Rewrites:   []string{"bind /var/run/docker.sock:/var/run/docker.sock:ro -> /run/dockgate/docker.sock:/var/run/docker.sock:ro"},
	}
}

// writeOne writes r and returns the one line it became.
func writeOne(t *testing.T, r *Record) string {
	t.Helper()
	var b bytes.Buffer
	NewLogger(&b).Write(r)
	s := b.String()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("record is not one line: %q", s)
	}
	return s
}

// decodeBack reads a line into a Record, with times compared as instants.
func decodeBack(t *testing.T, line string) Record {
	t.Helper()
	var got Record
	dec := json.NewDecoder(strings.NewReader(line))
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("line %q does not decode: %v", line, err)
	}
	return got
}

func sameRecord(t *testing.T, got, want Record) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
		if got.Caller != nil && want.Caller != nil {
			t.Errorf("caller %+v, want %+v", *got.Caller, *want.Caller)
		}
	}
}

func TestWriteDecodesBackToTheSameRecord(t *testing.T) {
	want := fullRecord()
	line := writeOne(t, want)
	sameRecord(t, decodeBack(t, line), *want)

	// The field names are the contract (BRIEF §6), plus the line type.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"action", "api_version", "bytes_in", "bytes_out", "caller", "decision", "duration_ms", "facts",
		"hash", "hijacked", "method", "object_id", "outcome", "path", "phase", "reason", "request_id", "rewrites", "seq", "status", "time", "type", "would_deny"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys %q\nwant %q", keys, wantKeys)
	}
	if string(raw["type"]) != `"audit"` {
		t.Errorf(`type %s, want "audit"`, raw["type"])
	}
	// RFC 3339 with nanoseconds, in UTC.
	if string(raw["time"]) != `"2026-11-26T18:04:05.123456789Z"` {
		t.Errorf("time %s", raw["time"])
	}
	var caller map[string]json.RawMessage
	json.Unmarshal(raw["caller"], &caller)
	var callerKeys []string
	for k := range caller {
		callerKeys = append(callerKeys, k)
	}
	slices.Sort(callerKeys)
	if want := []string{"cert", "container", "creators", "exe", "gid", "gids", "groups", "pid", "uid", "unit", "user"}; !slices.Equal(callerKeys, want) {
		t.Errorf("caller keys %q, want %q", callerKeys, want)
	}
	var facts []map[string]string
	json.Unmarshal(raw["facts"], &facts)
	if len(facts) != 2 || facts[0]["rule"] == "" || facts[1]["kind"] != "bind" {
		t.Errorf("facts %v", facts)
	}
	if _, ok := facts[1]["rule"]; ok {
		t.Error("empty rule written")
	}
}

func TestWriteMinimalRecordKeepsTheRequiredFields(t *testing.T) {
	want := &Record{Time: time.Unix(0, 1).UTC(), RequestID: "x-1", Decision: DecisionError}
	line := writeOne(t, want)
	sameRecord(t, decodeBack(t, line), *want)
	for _, k := range []string{`"type":"audit"`, `"request_id":"x-1"`, `"decision":"error"`, `"status":0`, `"bytes_in":0`, `"bytes_out":0`, `"duration_ms":0`, `"hijacked":false`, `"method":""`, `"path":""`, `"action":""`} {
		if !strings.Contains(line, k) {
			t.Errorf("line %s lacks %s", line, k)
		}
	}
	for _, k := range []string{"phase", "caller", "api_version", "facts", "would_deny", "reason", "outcome", "object_id"} {
		if strings.Contains(line, `"`+k+`"`) {
			t.Errorf("line %s has empty %s", line, k)
		}
	}
}

// Client-controlled text (paths, reasons quoting names) cannot break a
// record across lines or out of its string.
func TestWriteEscapesHostileText(t *testing.T) {
	want := &Record{
		Time:      time.Unix(1, 0).UTC(),
		RequestID: "x-2",
		Method:    "GET",
		Path:      "/containers/a\"b\\c/json",
		Action:    "unknown",
		Decision:  DecisionError,
		Reason:    "line1\nline2\r\"}{\"type\":\"audit\"\x00\x1b[31m\u2028",
		Status:    400,
	}
	line := writeOne(t, want)
	sameRecord(t, decodeBack(t, line), *want)

	// Invalid UTF-8 stays one line and still decodes.
	bad := &Record{Time: time.Unix(2, 0).UTC(), RequestID: "x-3", Decision: DecisionError, Reason: "caf\xc3 \xff"}
	decodeBack(t, writeOne(t, bad))
}

// slowWriter writes byte by byte and yields between bytes: two Writes that
// ran at once would interleave (and race on the buffer).
type slowWriter struct {
	b bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	for i := range p {
		w.b.WriteByte(p[i])
		if i%16 == 0 {
			runtime.Gosched()
		}
	}
	return len(p), nil
}

func TestConcurrentWritesNeverInterleave(t *testing.T) {
	const writers, each = 8, 50
	var w slowWriter
	l := NewLogger(&w)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := fullRecord()
				r.RequestID = fmt.Sprintf("w%d-%d", g, i)
				r.Reason = strings.Repeat("long reason ", 20)
				l.Write(r)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(w.b.String(), "\n"), "\n")
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		r := decodeBack(t, line)
		if seen[r.RequestID] {
			t.Fatalf("request_id %s twice", r.RequestID)
		}
		seen[r.RequestID] = true
	}
}

func TestOpen(t *testing.T) {
	l, err := Open("-")
	if err != nil || l.Close() != nil {
		t.Fatalf("Open(-): %v", err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(&Record{Time: time.Unix(3, 0).UTC(), RequestID: "x-4", Decision: DecisionAllow})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// The earlier line, the segment header that opens the chain, the record.
	if len(lines) != 3 || lines[0] != "earlier" || !strings.Contains(lines[1], `"type":"audit-segment"`) || !strings.Contains(lines[2], `"request_id":"x-4"`) {
		t.Errorf("file %q: the record is not appended", b)
	}

	fresh := filepath.Join(t.TempDir(), "new.log")
	l, err = Open(fresh)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new audit log mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func BenchmarkWrite(b *testing.B) {
	l := NewLogger(io.Discard)
	r := fullRecord()
	b.ReportAllocs()
	for b.Loop() {
		l.Write(r)
	}
}
