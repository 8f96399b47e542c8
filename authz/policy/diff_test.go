package policy

import (
	"slices"
	"testing"
)

func TestDiffPolicies(t *testing.T) {
	base := "p, *, endpoint, system.ping, allow\np, *, endpoint, *, allow\np, *, endpoint, container.*, deny\ng, uid:1001, role:ci\n"
	for _, tc := range []struct {
		name           string
		old, new       map[string]string
		added, removed []string
	}{
		{name: "startup: every row is added", new: map[string]string{"a.csv": base},
			added: []string{"a.csv:1: p, *, endpoint, system.ping, allow", "a.csv:2: p, *, endpoint, *, allow", "a.csv:3: p, *, endpoint, container.*, deny", "a.csv:4: g, uid:1001, role:ci"}},
		{name: "a deny row removed", old: map[string]string{"a.csv": base},
			new:     map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\np, *, endpoint, *, allow\ng, uid:1001, role:ci\n"},
			removed: []string{"a.csv:3: p, *, endpoint, container.*, deny"}},
		{name: "rows moved to other lines and files are no change", old: map[string]string{"a.csv": base},
			new: map[string]string{"a.csv": "# comment\ng, uid:1001, role:ci\np, *, endpoint, container.*, deny\n", "b.csv": "p, *, endpoint, *, allow\np, *, endpoint, system.ping, allow\n"}},
		{name: "a row changed is one removed and one added", old: map[string]string{"a.csv": base},
			new:     map[string]string{"a.csv": "p, *, endpoint, system.ping, allow\np, *, endpoint, *, allow\np, *, endpoint, container.*, allow\ng, uid:1001, role:ci\n"},
			added:   []string{"a.csv:3: p, *, endpoint, container.*, allow"},
			removed: []string{"a.csv:3: p, *, endpoint, container.*, deny"}},
		{name: "a role membership added", old: map[string]string{"a.csv": base},
			new:   map[string]string{"a.csv": base + "g, uid:1002, role:ci\n"},
			added: []string{"a.csv:5: g, uid:1002, role:ci"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var old *Policy
			if tc.old != nil {
				old = loadTestPolicy(t, tc.old)
			}
			d := DiffRows(old, loadTestPolicy(t, tc.new))
			if !slices.Equal(d.Added, tc.added) || !slices.Equal(d.Removed, tc.removed) {
				t.Fatalf("added %q removed %q\nwant added %q removed %q", d.Added, d.Removed, tc.added, tc.removed)
			}
		})
	}
}
