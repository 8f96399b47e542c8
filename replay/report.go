package replay

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a reader: the newly refused requests
// (at most limit of them, 0 for all), the newly allowed ones, what could
// not be replayed and why, the changes by caller and by rule, and the
// verdict.
func (r *Report) WriteText(w io.Writer, limit int) {
	fmt.Fprintf(w, "replayed %d requests under %s (%s)\n", r.Requests, r.Policy, r.Hash)
	if n := len(r.BadLines); n > 0 {
		fmt.Fprintf(w, "\n%d lines are not records of the trail:\n", n)
		for i, b := range r.BadLines {
			if limit > 0 && i == limit {
				fmt.Fprintf(w, "  … and %d more\n", n-limit)
				break
			}
			fmt.Fprintf(w, "  %s:%d: %s\n", b.File, b.Line, b.Err)
		}
	}

	fmt.Fprintf(w, "\nnewly refused: %d (%d had succeeded)\n", len(r.NewlyRefused), r.SucceededRefused())
	writeChanges(w, r.NewlyRefused, limit, func(c *Change) string {
		return "refused: " + c.Fact.Kind + " " + c.Fact.Value + ": " + c.Fact.Rule
	})
	fmt.Fprintf(w, "\nnewly allowed: %d\n", len(r.NewlyAllowed))
	writeChanges(w, r.NewlyAllowed, limit, func(c *Change) string {
		return "allowed: " + c.Fact.Kind + " " + c.Fact.Value + " by " + c.Fact.Rule + " (was: " + c.WasRule + ")"
	})

	fmt.Fprintf(w, "\nnot replayable: %d (%d had succeeded)\n", r.NotReplayableTotal(), r.NotReplayableSucceeded)
	for _, k := range sortedByCount(r.NotReplayable) {
		fmt.Fprintf(w, "  %8d  %s\n", r.NotReplayable[k], k)
	}
	fmt.Fprintf(w, "\nunchanged: %d\n", r.Unchanged)

	writeCounts(w, "by caller", r.BySubject)
	writeCounts(w, "by rule of the candidate", r.ByRule)

	fmt.Fprintln(w)
	switch {
	case r.SucceededRefused() > 0:
		fmt.Fprintf(w, "FAIL: the candidate refuses %d requests that succeeded\n", r.SucceededRefused())
	case r.NotReplayableSucceeded > 0:
		fmt.Fprintf(w, "FAIL: %d requests that succeeded cannot be replayed: the candidate is not shown to allow them\n", r.NotReplayableSucceeded)
	default:
		fmt.Fprintln(w, "ok: the candidate refuses no request that succeeded")
	}
}

func writeChanges(w io.Writer, cs []Change, limit int, what func(*Change) string) {
	for i := range cs {
		if limit > 0 && i == limit {
			fmt.Fprintf(w, "  … and %d more (--limit 0 lists all, --format json gives each)\n", len(cs)-limit)
			return
		}
		c := &cs[i]
		status := strconv.Itoa(c.Status)
		if c.WouldDeny {
			status += " (audit mode: would_deny)"
		}
		fmt.Fprintf(w, "  %s  %s  %s %s  %s  status %s  %s  [%s:%d]\n",
			c.Time.UTC().Format("2006-01-02T15:04:05.000Z"), c.Caller, c.Method, oneLine(c.Path), c.Action, status, oneLine(what(c)), c.File, c.Line)
	}
}

func writeCounts(w io.Writer, title string, m map[string]*Counts) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ca, cb := m[a], m[b]
		return cmp.Or(cmp.Compare(cb.NewlyRefused+cb.NewlyAllowed, ca.NewlyRefused+ca.NewlyAllowed), strings.Compare(a, b))
	})
	fmt.Fprintf(w, "\n%s:\n", title)
	for _, k := range keys {
		c := m[k]
		fmt.Fprintf(w, "  newly refused %6d (%d had succeeded)  newly allowed %6d  %s\n", c.NewlyRefused, c.Succeeded, c.NewlyAllowed, oneLine(k))
	}
}

func sortedByCount(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	return keys
}

// oneLine keeps text a client chose (paths, names) from breaking lines.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
