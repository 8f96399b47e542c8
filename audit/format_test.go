package audit

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// FormatRow lays a row out exactly as fmt's "%-24s %-18s %-26s %-8s %-6s %s\n"
// would, wide and multi-byte cells included.
func TestFormatRowMatchesFmtLayout(t *testing.T) {
	three := 3
	base := fullRecord()
	var entries []*Entry
	for i, mod := range []func(r *Record){
		func(r *Record) {},
		func(r *Record) { r.Phase, r.WouldDeny, r.Caller.User = "", false, "zoë-ünïcode" },
		func(r *Record) { r.Caller = nil; r.Action = "a.very.long.action.name.beyond.the.column" },
		func(r *Record) {
			r.Phase, r.Facts, r.Reason, r.ObjectID, r.ExitCode, r.Forwarded = "", nil, "", "", &three, ""
		},
		func(r *Record) { r.Phase, r.ExitCode = "", &three },
		func(r *Record) { r.Caller.User, r.Caller.Container, r.Status = "", "", 101 },
	} {
		r := *base
		c := *base.Caller
		r.Caller = &c
		r.Time = time.Date(2026, 11, 26, 21, 0, i, 5_000_000, time.UTC)
		mod(&r)
		entries = append(entries, &Entry{Record: r})
	}
	for i, e := range entries {
		var got bytes.Buffer
		FormatRow(&got, e)
		status := strconv.Itoa(e.Status)
		if e.Phase == PhaseStart {
			status = "start"
		}
		decision := e.Decision
		if e.WouldDeny {
			decision += "*"
		}
		// The reason column is FormatRow's own; the layout is fmt's.
		why := got.String()[len(got.String())-len(oneLineWhy(t, got.String()))-1 : got.Len()-1]
		want := fmt.Sprintf("%-24s %-18s %-26s %-8s %-6s %s\n", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
			CallerName(e.Caller), e.Action, decision, status, why)
		if got.String() != want {
			t.Errorf("%d:\n got %q\nwant %q", i, got.String(), want)
		}
	}
	var got bytes.Buffer
	FormatRow(&got, entries[4])
	if !bytes.Contains(got.Bytes(), []byte(" exit 3; user:jenkins")) {
		t.Errorf("exit code not shown first: %q", got.String())
	}
	got.Reset()
	FormatRow(&got, entries[3])
	if !bytes.HasSuffix(got.Bytes(), []byte(" exit 3\n")) {
		t.Errorf("exit code: %q", got.String())
	}
}

// oneLineWhy returns the reason column of a row: what follows the status
// column.
func oneLineWhy(t *testing.T, row string) string {
	t.Helper()
	runes := []rune(row)
	widths := []int{24, 18, 26, 8, 6}
	i := 0
	for _, w := range widths {
		// a cell is at least w runes, then one space; a longer one ends at
		// the first space after w runes
		j := i + w
		for j < len(runes) && runes[j] != ' ' {
			j++
		}
		i = j + 1
	}
	return string(runes[i : len(runes)-1])
}
