package policy

import (
	"fmt"
	"slices"
)

// lookups are what decisions, settings and advice look up by name in a
// loaded policy, computed once at load so that a request reads a few map
// entries instead of every row of a 10,000-row policy or casbin's role
// manager (whose lookups allocate).
type lookups struct {
	// rowsByKind are the rows by their KIND column as written, in policy
	// order: the setting rows (tenant, tenant-ttl, host-identity) and the
	// rows advice names.
	rowsByKind map[string][]*Rule
	// rolesOf are the roles of every name a g row makes a member, directly
	// or through other roles, as casbin's role manager resolves them.
	rolesOf map[string][]string
	// roleRank orders the roles as the g rows first name them.
	roleRank map[string]int
	// allowKinds are, for each subject or role with allow rows, the KIND
	// columns of those rows as written.
	allowKinds map[string]map[string]bool
}

func buildLookups(p *Policy) (lookups, error) {
	lk := lookups{
		rowsByKind: make(map[string][]*Rule),
		rolesOf:    make(map[string][]string),
		roleRank:   make(map[string]int),
		allowKinds: make(map[string]map[string]bool),
	}
	for _, r := range p.Rules {
		lk.rowsByKind[r.Kind] = append(lk.rowsByKind[r.Kind], r)
		if r.deny {
			continue
		}
		kinds := lk.allowKinds[r.Subject]
		if kinds == nil {
			kinds = make(map[string]bool)
			lk.allowKinds[r.Subject] = kinds
		}
		kinds[r.Kind] = true
	}
	for _, ln := range p.Links {
		if _, ok := lk.roleRank[ln.Role]; !ok {
			lk.roleRank[ln.Role] = len(lk.roleRank)
		}
	}
	rm := p.enforcer.GetRoleManager()
	if rm == nil {
		return lk, nil
	}
	for _, ln := range p.Links {
		if _, done := lk.rolesOf[ln.Member]; done {
			continue
		}
		roles, err := rm.GetImplicitRoles(ln.Member)
		if err != nil {
			return lookups{}, fmt.Errorf("roles of %s: %v", ln.Member, err)
		}
		lk.rolesOf[ln.Member] = roles
	}
	return lk, nil
}

// rolesOf returns the roles a caller with these subjects has, directly or
// through other roles, in the order the policy's g rows first name them.
func (p *Policy) rolesOf(subjects []string) []string {
	var out []string
	for _, s := range subjects {
		for _, r := range p.lookups.rolesOf[s] {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return p.lookups.roleRank[a] - p.lookups.roleRank[b] })
	return out
}
