package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Tenancy: a caller whose creates are labelled as its own and who may
// touch only what it owns (docs/tenancy.md). A policy row
//
//	p, SUBJECT, tenant, PREFIX, allow
//
// makes every caller with SUBJECT (or a role SUBJECT names) a tenant whose
// owner is its own subject with that prefix: `p, role:ci, tenant, user,
// allow` makes a member of role:ci the owner "user:<name>" of what it
// creates. Only rows whose kind is literally `tenant` count: a row such as
// `p, uid:0, *, **, allow` never makes anyone a tenant. A deny row takes
// its prefix back. When several prefixes are allowed the first row (in
// policy order) whose prefix the caller has a subject for names the owner.

// TenantKind is the policy kind of tenancy rows; it is not a fact.
const TenantKind = "tenant"

// tenantPrefixes are the subject prefixes an owner may be named by.
var tenantPrefixes = []string{"uid", "user", "unit", "container", "cert"}

func checkTenantPattern(pattern string) error {
	for _, p := range tenantPrefixes {
		if pattern == p {
			return nil
		}
	}
	return fmt.Errorf("tenant: the value must be one of %s, not %q", strings.Join(tenantPrefixes, ", "), pattern)
}

// subjectApplies says of a name (a subject or a role) whether its rows
// apply to a caller with these subjects.
func (p *Policy) subjectApplies(subjects []string) func(string) bool {
	if p.index != nil {
		var set subjectSet
		p.index.resolve(subjects, &set)
		names := make(map[string]bool, set.len())
		for i, n := 0, set.len(); i < n; i++ {
			names[set.at(i).name] = true
		}
		return func(s string) bool { return names[s] }
	}
	rm := p.enforcer.GetRoleManager()
	return func(s string) bool {
		for _, sub := range subjects {
			if sub == s {
				return true
			}
			if rm != nil {
				if ok, err := rm.HasLink(sub, s); err == nil && ok {
					return true
				}
			}
		}
		return false
	}
}

// Owner returns the owner subject of a caller that the policy makes a
// tenant, "" for a caller who is not one. A tenant without a subject of
// any of its prefixes (a `unit` tenant outside a systemd unit, a `user`
// tenant whose uid has no name on the host) is an error that names the
// rows and says what is missing: what it creates could not be recorded as
// its own.
func (p *Policy) Owner(subjects []string) (string, error) {
	var rows []*Rule
	for _, r := range p.settingRows(TenantKind, subjects) {
		rows = append(rows, r)
		for _, s := range subjects {
			if strings.HasPrefix(s, r.Pattern+":") {
				return s, nil
			}
		}
	}
	if len(rows) > 0 {
		return "", errors.New(noOwnerSubject(subjects, rows))
	}
	return "", nil
}

// noOwnerSubject explains why a tenant has no subject to own objects by:
// which rows make it a tenant, what it lacks, and how to give it an owner.
func noOwnerSubject(subjects []string, rows []*Rule) string {
	who := "the caller"
	for _, pre := range identityOrder {
		if s := subjectWith(subjects, pre); s != "" {
			who = s
			break
		}
	}
	texts := make([]string, len(rows))
	var lacks []string
	for i, r := range rows {
		texts[i] = r.text
		lacks = append(lacks, r.Pattern+": ("+missingWhy(subjects, r.Pattern)+")")
	}
	msg := "the policy makes " + who + " a tenant (" + strings.Join(texts, "; ") + "), but it has no subject to own objects by: no " + strings.Join(lacks, ", no ")
	// An owner that names a person where there is one: the user name
	// reads better in labels and `dockgate gc --owner` than a uid.
	for _, prefix := range []string{"user", "uid", "cert", "unit", "container"} {
		if s := subjectWith(subjects, prefix+":"); s != "" {
			return msg + `; add "` + rowText("p", s, TenantKind, prefix, "allow") + `" to the policy to make it the owner ` + s
		}
	}
	return msg
}

// missingWhy says why a caller has no subject with prefix.
func missingWhy(subjects []string, prefix string) string {
	uid := subjectWith(subjects, "uid:")
	cert := subjectWith(subjects, "cert:") != ""
	switch {
	case prefix == "user" && uid != "":
		return "uid " + strings.TrimPrefix(uid, "uid:") + " has no name in the host's user database"
	case (prefix == "user" || prefix == "uid") && cert:
		return "a TLS client has no account on this host"
	case prefix == "user" || prefix == "uid":
		return "the caller has no host account subjects"
	case prefix == "unit":
		return "the caller does not run in a systemd unit"
	case prefix == "container":
		return "the caller does not run in a container of this daemon"
	case prefix == "cert":
		return "the caller is not a TLS client"
	}
	return "the caller has none"
}

// subjectWith returns the caller's first subject with the prefix pre.
func subjectWith(subjects []string, pre string) string {
	for _, s := range subjects {
		if strings.HasPrefix(s, pre) {
			return s
		}
	}
	return ""
}

// TenantTTLKind is the policy kind of the rows that give a tenant's
// objects a time to live:
//
//	p, role:ci, tenant-ttl, 2h, allow
//
// What such a tenant creates gets an expiry label (authz.ExpiresLabel:
// creation time plus the TTL), and `dockgate gc --expired` (or serve's
// --gc-interval) removes it after that. With several rows the shortest
// TTL applies. Like tenant rows, only the literal kind counts, and it is
// no fact.
const TenantTTLKind = "tenant-ttl"

func checkTenantTTL(pattern, effect string) error {
	if effect != "allow" {
		return fmt.Errorf("tenant-ttl: rows are allow only (a duration cannot be denied)")
	}
	d, err := time.ParseDuration(pattern)
	if err != nil || d <= 0 {
		return fmt.Errorf("tenant-ttl: the value must be a positive duration such as 90m or 2h, not %q", pattern)
	}
	return nil
}

// TTL returns the time to live of what a tenant with these subjects
// creates: the shortest of its tenant-ttl rows, 0 when it has none.
func (p *Policy) TTL(subjects []string) time.Duration {
	var applies func(string) bool
	var ttl time.Duration
	for _, r := range p.lookups.rowsByKind[TenantTTLKind] {
		if applies == nil {
			applies = p.subjectApplies(subjects)
		}
		if !applies(r.Subject) {
			continue
		}
		// Validated at load.
		d, _ := time.ParseDuration(r.Pattern)
		if ttl == 0 || d < ttl {
			ttl = d
		}
	}
	return ttl
}

// TenantWarnings names each uid subject the policy writes rows for (p or
// g) that the policy makes a tenant owning by an identity the uid cannot
// have: a `tenant, user` row for a uid without a name in the host's user
// database. Every create such a caller makes is refused (authz Owner
// says why at the time); `dockgate check` says so before anyone tries.
// lookup says whether the host's user database names a uid (user.LookupId).
func (p *Policy) TenantWarnings(lookup func(uid string) error) []string {
	type where struct {
		file string
		line int
	}
	seen := map[string]where{}
	var order []string
	note := func(subject, file string, line int) {
		if !strings.HasPrefix(subject, "uid:") {
			return
		}
		if _, ok := seen[subject]; !ok {
			seen[subject] = where{file, line}
			order = append(order, subject)
		}
	}
	for _, l := range p.Links {
		note(l.Member, l.File, l.Line)
	}
	for _, r := range p.Rules {
		note(r.Subject, r.File, r.Line)
	}
	var out []string
	for _, s := range order {
		uid := strings.TrimPrefix(s, "uid:")
		if lookup(uid) == nil {
			continue
		}
		// The caller as dockgate would see it: its uid, and everyone's
		// subject.
		if _, err := p.Owner([]string{s, "*"}); err != nil {
			w := seen[s]
			out = append(out, fmt.Sprintf("%s:%d: warning: %s: %v", w.file, w.line, s, err))
		}
	}
	return out
}
