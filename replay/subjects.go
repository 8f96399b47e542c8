package replay

import (
	"slices"
	"strconv"
	"strings"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz/policy"
)

// Why a record's caller cannot be judged again.
const (
	whyContainerSubjects = "a caller in a container whose subjects are not on record"
	whySupplementaryGIDs = "the caller's supplementary gids are not on record (a record of an older dockgate), and the candidate has rows for gid: subjects"
)

// callerSubjects are the subjects the proxy judged a recorded caller by,
// as proxy.Caller.Subjects and authz.JudgeContainer make them, for the
// candidate p: a host caller's from its identity, a caller in a
// container's as recorded (caller.subjects), with the host identities
// p grants its container instead of those the recording policy granted.
// why says what is missing when they cannot be known.
func (r *replayer) callerSubjects(c *audit.Caller) (subjects []string, why string) {
	switch {
	case c == nil:
		return nil, "no caller on record"
	case c.Cert != "":
		// A TLS caller: its certificate's subjects, never a uid's.
		s := append([]string{"cert:" + c.Cert}, c.CertSANs...)
		if c.Unit != "" {
			s = append(s, "unit:"+c.Unit)
		}
		return append(s, "*"), ""
	case c.Container != "":
		return r.containerSubjects(c)
	}
	s := make([]string, 0, 5+len(c.Groups))
	s = append(s, "uid:"+strconv.FormatUint(uint64(c.UID), 10))
	if c.User != "" {
		s = append(s, "user:"+c.User)
	}
	if len(c.GIDs) > 0 {
		for _, g := range c.GIDs {
			s = append(s, "gid:"+strconv.FormatUint(uint64(g), 10))
		}
	} else {
		// A record written before the gids were on record has the
		// primary gid and the names of the groups only. Only a
		// candidate that names another gid: subject can tell the
		// difference.
		primary := "gid:" + strconv.FormatUint(uint64(c.GID), 10)
		if r.otherGIDs(primary) {
			return nil, whySupplementaryGIDs
		}
		s = append(s, primary)
	}
	for _, g := range c.Groups {
		s = append(s, "group:"+g)
	}
	if c.Unit != "" {
		s = append(s, "unit:"+c.Unit)
	}
	return append(s, "*"), ""
}

// otherGIDs says whether the candidate names a gid: subject other than
// primary.
func (r *replayer) otherGIDs(primary string) bool {
	for _, g := range r.gidSubjects {
		if g != primary {
			return true
		}
	}
	return false
}

// containerSubjects are the subjects of a caller in a container. A
// tenant's container acts for its tenant (acts_for): its subjects are the
// tenant's, whatever the policy. Any other container has its own
// (container:, image:, label:) and the host identities the policy grants
// them, which the candidate decides again.
func (r *replayer) containerSubjects(c *audit.Caller) ([]string, string) {
	if len(c.Subjects) == 0 {
		return nil, whyContainerSubjects
	}
	if c.ActsFor != "" || c.ContainerName == "" {
		// A tenant's container, or one dockerd did not know (judged as *).
		return withStar(c.Subjects), ""
	}
	own := make([]string, 0, len(c.Subjects))
	for _, s := range c.Subjects {
		if s != "*" && !policy.IsHostIdentity(s) {
			own = append(own, s)
		}
	}
	granted, _ := r.p.HostIdentities(own)
	return append(append(own, granted...), "*"), ""
}

func withStar(s []string) []string {
	if slices.Contains(s, "*") {
		return s
	}
	return append(slices.Clone(s), "*")
}

// policyGIDs are the gid: subjects a policy's rows and role links name.
func policyGIDs(p *policy.Policy) []string {
	var out []string
	add := func(s string) {
		if strings.HasPrefix(s, "gid:") && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, r := range p.Rules {
		add(r.Subject)
	}
	for _, l := range p.Links {
		add(l.Member)
	}
	return out
}
