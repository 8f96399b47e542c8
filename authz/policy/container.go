package policy

import (
	"fmt"
	"slices"
	"strings"
)

// HostIdentityKind is the policy kind of the rows that grant a container
// caller a host identity subject, which it never has otherwise
// (docs/containers.md): p, container:backup, host-identity, user:backup,
// allow. It is not a fact.
const HostIdentityKind = "host-identity"

// hostIdentityPrefixes are the subjects a host process has by its
// account and its systemd unit, and a container only by a
// host-identity row.
var hostIdentityPrefixes = []string{"uid:", "user:", "gid:", "group:", "unit:"}

// containerPrefixes are the subjects of a container caller that no tenant
// created.
var containerPrefixes = []string{"container:", "image:", "label:"}

// IsHostIdentity reports whether s is a host identity subject (uid:,
// user:, gid:, group:, unit:).
func IsHostIdentity(s string) bool {
	for _, pre := range hostIdentityPrefixes {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}

// checkHostIdentityRow: the grant names one host identity, literally, and
// is given to a container subject or a role. Given to * or to a host
// subject it would hand a host identity to callers who are not containers
// (or to every container).
func checkHostIdentityRow(sub, pattern string) error {
	switch {
	case sub == "*" || identitySubject(sub) && !isContainerSubject(sub):
		return fmt.Errorf("host-identity: the subject must be a container subject (container:, image:, label:) or a role, not %q", sub)
	case !IsHostIdentity(pattern):
		return fmt.Errorf("host-identity: the value must be one host identity subject (%s), not %q", strings.Join(hostIdentityPrefixes, ", "), pattern)
	case strings.ContainsAny(pattern, "*?"):
		return fmt.Errorf("host-identity: the value %q must be literal, not a pattern", pattern)
	}
	return checkSubject(pattern)
}

func isContainerSubject(s string) bool {
	for _, pre := range containerPrefixes {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}

// HostIdentities returns the host identity subjects the policy grants a
// container caller with these (container) subjects, and the rows that
// grant them: the values of the host-identity rows of its subjects and
// roles that allow, less those a row of theirs denies.
func (p *Policy) HostIdentities(subjects []string) (granted []string, rows []*Rule) {
	for _, r := range p.settingRows(HostIdentityKind, subjects) {
		if !slices.Contains(granted, r.Pattern) {
			granted = append(granted, r.Pattern)
			rows = append(rows, r)
		}
	}
	return granted, rows
}

// settingRows are the allowing rows of a kind that is a setting, not a
// fact (tenant, host-identity), of a caller with these subjects or its
// roles, in policy order, less those whose value a deny row of theirs
// names.
func (p *Policy) settingRows(kind string, subjects []string) []*Rule {
	rows := p.lookups.rowsByKind[kind]
	if len(rows) == 0 {
		return nil
	}
	applies := p.subjectApplies(subjects)
	denied := map[string]bool{}
	var allowed []*Rule
	for _, r := range rows {
		if !applies(r.Subject) {
			continue
		}
		if r.deny {
			denied[r.Pattern] = true
		} else {
			allowed = append(allowed, r)
		}
	}
	return slices.DeleteFunc(allowed, func(r *Rule) bool { return denied[r.Pattern] })
}
