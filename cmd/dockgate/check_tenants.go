package main

import (
	"fmt"
	"io"
	"os/user"
	"strings"

	"github.com/dockgate/dockgate/authz/policy"
)

// tenantWarnings names each uid subject the policy writes rows for (p or
// g) that the policy makes a tenant owning by an identity the uid cannot
// have: a `tenant, user` row for a uid without a name in the host's user
// database. Every create such a caller makes is refused (authz Owner
// says why at the time); check says so before anyone tries. lookup is
// user.LookupId, replaced in tests.
func tenantWarnings(p *policy.Policy, lookup func(uid string) error) []string {
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

func printTenantWarnings(w io.Writer, p *policy.Policy) {
	for _, line := range tenantWarnings(p, func(uid string) error {
		_, err := user.LookupId(uid)
		return err
	}) {
		fmt.Fprintln(w, line)
	}
}
