package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReadTrail: whatever bytes a trail holds (client-chosen paths and
// names in records, torn lines, another program's output), ReadTrail
// neither panics nor loses its place: every line is a record, a bad line
// or passed over, each once and in order.
func FuzzReadTrail(f *testing.F) {
	var good bytes.Buffer
	l := NewLogger(&good)
	l.Write(&Record{Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), RequestID: "1", Caller: &Caller{UID: 1, User: "a\u2028"}, Method: "GET", Path: "/v1.41/containers/json?x=\"", Action: "container.list",
		Facts: []FactResult{{Kind: "endpoint", Value: "container.list", Decision: "allow", Rule: "p.csv:1: p, *, endpoint, *, allow"}}, Decision: DecisionAllow, Status: 200})
	l.Write(&Record{Time: time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC), RequestID: "2", Phase: PhaseStart, Action: "exec.start", Decision: DecisionAllow})
	f.Add(good.Bytes())
	f.Add([]byte("not a record\n{\"type\":\"audit\",\"time\":\"x\"}\n\n{\"type\":\"policy\",}\n"))
	f.Add(append(good.Bytes(), `{"type":"audit","time":"2026-12-01T00:00:02Z","caller":{"uid":1`...))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "trail.log")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		last, seen := 0, 0
		step := func(line int) {
			if line <= last || line > lines {
				t.Fatalf("line %d after line %d, of %d", line, last, lines)
			}
			last = line
			seen++
		}
		err := ReadTrail([]string{path}, TrailOptions{Bad: func(b BadLine) error { step(b.Line); return nil }}, func(e *Entry) error {
			if e.Type != "audit" || e.Phase == PhaseStart {
				t.Fatalf("gave a %q %q record", e.Type, e.Phase)
			}
			step(e.Line)
			return nil
		})
		if err != nil && len(data) < MaxLineBytes {
			t.Fatalf("ReadTrail: %v", err)
		}
		if seen > lines {
			t.Fatalf("%d records and bad lines of %d lines", seen, lines)
		}
	})
}
