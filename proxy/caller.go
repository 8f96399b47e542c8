package proxy

import (
	"strconv"

	"github.com/dockgate/dockgate/audit"
	"github.com/dockgate/dockgate/authz"
)

// Caller is who is on the other end of one client connection. It is read from
// the kernel (SO_PEERCRED) and /proc when the connection is accepted, never
// from anything the client sends, and shared by every request on that
// connection. A TLS client has no account on this host: its UID and GID are
// noID and it is named by its certificate (Cert, CertSANs).
type Caller struct {
	// UID and GID are the effective uid and gid of the peer, PID its
	// process (0 when it runs in a pid namespace dockgate cannot see).
	UID uint32
	GID uint32
	PID int32
	// User is the name of UID, empty when it has none.
	User string
	// GIDs are the caller's groups, primary first, then supplementary ones
	// (a GID with no name is missing from Groups but still a gid: subject).
	GIDs []uint32
	// Groups are the names of the GIDs that have one.
	Groups []string
	// Exe is the peer's executable, read from /proc.
	Exe string
	// Cgroup is the caller's cgroup v2 path (or the v1 name=systemd path);
	// Unit and Container are the systemd unit and the ID of the container
	// the caller runs in, read from that path.
	Cgroup    string
	Unit      string
	Container string
	// Cert is the common name of a TLS caller's verified certificate.
	Cert string
	// CertSANs are the DNS and URI subject alternative names of that
	// certificate, as the subjects they give: "cert-dns:NAME" and
	// "cert-uri:URI".
	CertSANs []string
}

// AuditCaller is the caller as its audit records show it: uid, gid, pid,
// user, gids and group names, executable, systemd unit, container ID,
// certificate. The cgroup path is not on record. It shares Groups and
// CertSANs with c (neither changes once the caller is identified), and is
// made once per connection, not once per request.
func (c *Caller) AuditCaller() *audit.Caller {
	if c == nil {
		return nil
	}
	return &audit.Caller{
		UID: c.UID, GID: c.GID, PID: c.PID,
		User: c.User, Groups: c.Groups, GIDs: c.GIDs, Exe: c.Exe,
		Unit: c.Unit, Container: c.Container,
		Cert: c.Cert, CertSANs: c.CertSANs,
	}
}

// Subjects are the policy subjects the caller has (BRIEF §3), most specific
// first; "*" is always last. A caller in a container has none of its host
// identity: the decider asks dockerd who that container is
// (authz.Request.ContainerID) and judges it as that, so until then it is
// only "*".
func (c *Caller) Subjects() []string {
	if c == nil || c.Container != "" && c.Cert == "" {
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
	return append(s, "*")
}

// String names the caller in refusals: the user name when known, else the uid.
func (c *Caller) String() string {
	switch {
	case c == nil:
		return "unknown caller"
	case c.Cert != "":
		return "cert:" + c.Cert
	case c.Container != "":
		return "container " + c.Container[:min(12, len(c.Container))]
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
	cred := &authz.Cred{UID: c.UID, GIDs: c.GIDs}
	if c.Container != "" {
		// Until the decider reads its container's mounts, it may
		// change anything.
		cred.Contained, cred.Writable = true, []string{"/"}
	}
	return cred
}

// judgedContainer is the audit caller of one request of a caller in a
// container: the connection's, with what dockerd said of the container
// and the subjects it was judged by, which may change between requests
// (a rename).
func judgedContainer(c *audit.Caller, cc *authz.ContainerCaller) *audit.Caller {
	j := *c
	j.ContainerName, j.Subjects, j.ActsFor = cc.Name, cc.Subjects, cc.Tenant
	if !cc.Known {
		j.ContainerName = ""
		return &j
	}
	// On record even when empty: a replay then knows nothing capped it.
	j.Creators = cc.Creators
	if j.Creators == nil {
		j.Creators = [][]string{}
	}
	return &j
}
