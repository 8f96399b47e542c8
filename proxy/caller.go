package proxy

import (
	"strconv"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// Caller is who is on the other end of one client connection. It is read from
// the kernel (SO_PEERCRED) and /proc when the connection is accepted, never
// from anything the client sends, and shared by every request on that
// connection.
type Caller struct {
	// Caller holds what the audit record shows: uid, gid, pid, user, group
	// names, executable, systemd unit, container ID, certificate name.
	audit.Caller
	// GIDs are the caller's groups, primary first, then supplementary ones
	// (a GID with no name is missing from Groups but still a gid: subject).
	GIDs []uint32
	// Cgroup is the caller's cgroup v2 path (or the v1 name=systemd path).
	Cgroup string
}

// Subjects are the policy subjects the caller has (BRIEF §3), most specific
// first; "*" is always last.
func (c *Caller) Subjects() []string {
	if c == nil {
		return []string{"*"}
	}
	s := make([]string, 0, 4+2*len(c.GIDs))
	if c.Cert != "" {
		// The SANs carry their own prefixes (cert-dns:, cert-uri:), so
		// that no SAN can pose as a common name or as each other.
		s = append(s, "cert:"+c.Cert)
		s = append(s, c.CertSANs...)
	} else {
		s = append(s, "uid:"+strconv.FormatUint(uint64(c.UID), 10))
		if c.User != "" {
			s = append(s, "user:"+c.User)
		}
		for _, g := range c.GIDs {
			s = append(s, "gid:"+strconv.FormatUint(uint64(g), 10))
		}
		for _, g := range c.Groups {
			s = append(s, "group:"+g)
		}
	}
	if c.Unit != "" {
		s = append(s, "unit:"+c.Unit)
	}
	if c.Container != "" {
		s = append(s, "container:"+c.Container)
	}
	return append(s, "*")
}

// String names the caller in refusals: the user name when known, else the uid.
func (c *Caller) String() string {
	switch {
	case c == nil:
		return "unknown caller"
	case c.Cert != "":
		return "cert:" + c.Cert
	case c.User != "":
		return "user:" + c.User
	default:
		return "uid:" + strconv.FormatUint(uint64(c.UID), 10)
	}
}

// Cred is the caller's uid and groups on this host, for judging which host
// paths it could change; nil for a TLS client, which has no account here.
func (c *Caller) Cred() *authz.Cred {
	if c == nil || c.Cert != "" {
		return nil
	}
	return &authz.Cred{UID: c.UID, GIDs: c.GIDs}
}
