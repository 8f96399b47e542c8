package proxy

import (
	"strconv"
)

// Caller is who is on the other end of one client connection. It is read from
// the kernel (SO_PEERCRED) and /proc when the connection is accepted, never
// from anything the client sends, and shared by every request on that
// connection.
type Caller struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	PID int32  `json:"pid"`
	// User is the name of UID, empty when the user database has none.
	User string `json:"user,omitempty"`
	// GIDs are the caller's groups, primary first, then supplementary ones.
	GIDs []uint32 `json:"-"`
	// Groups are the names of GIDs (a GID with no name is left out here but
	// still yields a gid: subject).
	Groups []string `json:"groups,omitempty"`
	// Exe is the caller's executable (/proc/<pid>/exe), best effort.
	Exe string `json:"exe,omitempty"`
	// Cgroup is the caller's cgroup v2 path (or the v1 name=systemd path).
	Cgroup string `json:"-"`
	// Unit is the systemd unit the caller runs in, when any.
	Unit string `json:"unit,omitempty"`
	// Container is the full ID of the container the caller runs in, when the
	// cgroup names one.
	Container string `json:"container,omitempty"`
	// Cert is the common name of a verified TLS client certificate.
	Cert string `json:"cert,omitempty"`
}

// Subjects are the policy subjects the caller has (BRIEF §3), most specific
// first; "*" is always last.
func (c *Caller) Subjects() []string {
	if c == nil {
		return []string{"*"}
	}
	s := make([]string, 0, 4+2*len(c.GIDs))
	if c.Cert != "" {
		s = append(s, "cert:"+c.Cert)
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
