package audit

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A trail of several batches is given to fn whole, in order, with the
// line each record is on, start records and policy records passed over.
func TestReadTrailInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3*trailBatchLines + 7
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l.WritePolicy(&PolicyRecord{Time: t0, Result: PolicyApplied, Trigger: "startup", Source: "p", PolicyHash: "sha256:x"})
	for i := range n {
		if i%100 == 0 {
			l.Write(&Record{Time: t0, RequestID: strconv.Itoa(i), Phase: PhaseStart, Action: "exec.start", Decision: DecisionAllow})
		}
		l.Write(&Record{Time: t0.Add(time.Duration(i) * time.Second), RequestID: strconv.Itoa(i), Action: "system.ping", Decision: DecisionAllow, Status: 200})
	}
	l.Close()

	var ids []string
	lastLine := 0
	err = ReadTrail([]string{path}, TrailOptions{}, func(e *Entry) error {
		if e.Line <= lastLine || e.File != path {
			t.Fatalf("record %s at %s:%d after line %d", e.RequestID, e.File, e.Line, lastLine)
		}
		lastLine = e.Line
		ids = append(ids, e.RequestID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != n {
		t.Fatalf("got %d records, want %d", len(ids), n)
	}
	for i, id := range ids {
		if id != strconv.Itoa(i) {
			t.Fatalf("record %d is %s", i, id)
		}
	}

	// Since and Until select by time; an error from fn stops the read.
	var got int
	stop := errors.New("enough")
	err = ReadTrail([]string{path}, TrailOptions{Since: t0.Add(10 * time.Second), Until: t0.Add(20 * time.Second)}, func(e *Entry) error {
		got++
		return nil
	})
	if err != nil || got != 10 {
		t.Errorf("since/until: %d records, %v; want 10", got, err)
	}
	got = 0
	err = ReadTrail([]string{path, path}, TrailOptions{}, func(e *Entry) error {
		if got++; got == trailBatchLines+3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || got != trailBatchLines+3 {
		t.Errorf("stopped after %d records with %v", got, err)
	}
}
