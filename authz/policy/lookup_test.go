package policy

import (
	"slices"
	"testing"

	"github.com/dockgate/dockgate/internal/policygen"
)

// casbinRolesOf is what rolesOf answered before the roles were resolved
// at load: casbin's role manager asked for every subject of the request,
// the roles ordered as the g rows first name them.
func casbinRolesOf(t *testing.T, p *Policy, subjects []string) []string {
	t.Helper()
	rm := p.Enforcer().GetRoleManager()
	has := map[string]bool{}
	for _, s := range subjects {
		roles, err := rm.GetImplicitRoles(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			has[r] = true
		}
	}
	var out []string
	for _, ln := range p.Links {
		if has[ln.Role] {
			out = append(out, ln.Role)
			delete(has, ln.Role)
		}
	}
	return out
}

// TestRolesOfIsCasbinsRoleManager: the roles resolved at load are casbin's,
// nested roles, shared roles and callers without roles included.
func TestRolesOfIsCasbinsRoleManager(t *testing.T) {
	nested := loadTestPolicy(t, map[string]string{"a.csv": `g, user:alice, role:dev
g, role:dev, role:staff
g, group:ops, role:oncall
g, role:oncall, role:staff
g, role:staff, role:everyone
g, user:bob, role:oncall
p, role:everyone, endpoint, system.*, allow
`})
	site := loadTestPolicy(t, map[string]string{"site.csv": policygen.Site(1000)})
	for _, tc := range []struct {
		name     string
		p        *Policy
		subjects []string
	}{
		{"a chain of roles", nested, []string{"user:alice", "uid:1000", "*"}},
		{"two roads to one role", nested, []string{"user:bob", "group:ops", "*"}},
		{"a caller without roles", nested, []string{"user:carol", "*"}},
		{"roles of a role", nested, []string{"role:dev"}},
		{"a team and role:ci", site, []string{"user:dev40", "group:team40", "group:team7", "*"}},
		{"root", site, []string{"uid:0", "user:root", "*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := tc.p.rolesOf(tc.subjects), casbinRolesOf(t, tc.p, tc.subjects)
			if !slices.Equal(got, want) {
				t.Errorf("rolesOf(%q) = %q; casbin's role manager: %q", tc.subjects, got, want)
			}
		})
	}
}
