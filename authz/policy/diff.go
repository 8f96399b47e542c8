package policy

// Diff is what changed between two policies, row by row: the rows of the
// new policy the old one does not have (Added) and the rows of the old one
// the new one does not have (Removed), each as text with its file and line
// ("ci.csv:3: p, role:ci, endpoint, *, allow"). A row is the same row
// wherever it stands: one that only moved to another line or file is
// neither added nor removed.
type Diff struct {
	Added, Removed []string
}

// DiffRows compares the rows of old and new; with old nil, every row of
// new is added (what a policy put in force at startup holds).
func DiffRows(old, new *Policy) Diff {
	was := rowSet(old)
	now := rowSet(new)
	var d Diff
	for _, r := range rowsOf(new) {
		if !was[r.key] {
			d.Added = append(d.Added, r.text)
		}
	}
	for _, r := range rowsOf(old) {
		if !now[r.key] {
			d.Removed = append(d.Removed, r.text)
		}
	}
	return d
}

type diffRow struct{ key, text string }

// rowsOf lists a policy's rows in policy order, p rows then g rows,
// keyed by their text without file and line.
func rowsOf(p *Policy) []diffRow {
	if p == nil {
		return nil
	}
	rows := make([]diffRow, 0, len(p.Rules)+len(p.Links))
	for _, r := range p.Rules {
		rows = append(rows, diffRow{rowText("p", r.Subject, r.Kind, r.Pattern, r.Effect), r.String()})
	}
	for _, l := range p.Links {
		rows = append(rows, diffRow{rowText("g", l.Member, l.Role), l.String()})
	}
	return rows
}

func rowSet(p *Policy) map[string]bool {
	set := make(map[string]bool)
	for _, r := range rowsOf(p) {
		set[r.key] = true
	}
	return set
}
