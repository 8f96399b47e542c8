package authz

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"path"
	"slices"
	"syscall"
)

// Host paths the caller controls (BRIEF §7 item 11). dockerd resolves a
// bind source, a volume's device and a device path again each time it
// starts the container, so a path judged at create can point elsewhere by
// then if the caller can rename or remove one of the entries the kernel
// looks up on the way: a directory swapped for a symlink to the directory
// of dockerd's socket, say. A second stat at start would only move the
// race; instead dockgate asks the kernel's own answer to "who may replace
// this entry" (owner, mode, sticky bit, ACL of each directory on the way)
// and emits a replaceable-path fact for such a path, which no row allows
// unless an administrator writes one.

// Cred is the caller's identity on this host, as the kernel reported it:
// what decides which host paths it can change. A caller with no account
// on this host (a TLS client) has a nil Cred.
type Cred struct {
	UID  uint32
	GIDs []uint32
	// Contained says the caller runs in a container: it can change host
	// paths only through what its container mounts writable, Writable
	// (host paths, as dockerd recorded them), whatever its uid; "/" when
	// dockgate cannot know (a container dockerd does not know).
	Contained bool
	Writable  []string
}

// fuseSuperMagic is statfs's f_type of a FUSE filesystem, whose owners
// and modes are whatever its (possibly unprivileged) server says.
const fuseSuperMagic = 0x65735546

// resolveFor is resolve, also saying why cred could replace an entry on
// the way ("" when it cannot). uid 0 can change anything on the host
// anyway, so nothing is replaceable for it that it could not already do.
func (h hostFS) resolveFor(p string, cred *Cred) (resolved, why string, err error) {
	if cred != nil && cred.Contained {
		resolved, err = h.walk(p, func(dir, name string) error {
			if why == "" {
				why = writableFromContainer(cred.Writable, dir)
			}
			return nil
		})
		return resolved, why, err
	}
	if cred != nil && cred.UID == 0 {
		r, err := h.resolve(p)
		return r, "", err
	}
	resolved, err = h.walk(p, func(dir, name string) error {
		if why != "" {
			return nil
		}
		w, err := h.replaceable(cred, dir, name)
		why = w
		return err
	})
	return resolved, why, err
}

// writableFromContainer says why a caller in a container could change the
// entries of the host directory dir: one of its container's writable
// mounts (mounts) holds it. "" when none does.
func writableFromContainer(mounts []string, dir string) string {
	for _, m := range mounts {
		m = path.Clean(m)
		if dir == m || m == "/" || strings.HasPrefix(dir, m+"/") {
			return fmt.Sprintf("%s is writable from the caller's container, which mounts %s", dir, m)
		}
	}
	return ""
}

// replaceable says why cred can rename, remove or create the entry name
// of the directory dir, "" when it cannot.
func (h hostFS) replaceable(cred *Cred, dir, name string) (string, error) {
	onHost := h.onHost(dir)
	var st syscall.Stat_t
	if err := syscall.Lstat(onHost, &st); err != nil {
		return "", badBody("cannot check who may change host directory %q: %v", dir, err)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(onHost, &sfs); err != nil {
		return "", badBody("cannot check the filesystem of host directory %q: %v", dir, err)
	}
	if sfs.Type == fuseSuperMagic {
		return fmt.Sprintf("%s is on a FUSE filesystem", dir), nil
	}
	if cred != nil && st.Uid == cred.UID {
		// Its owner can chmod it writable whatever its mode says.
		return fmt.Sprintf("%s belongs to uid %d", dir, cred.UID), nil
	}
	writable, by, err := writableBy(onHost, &st, cred)
	if err != nil {
		return "", badBody("cannot read the ACL of host directory %q: %v", dir, err)
	}
	if !writable {
		return "", nil
	}
	if st.Mode&syscall.S_ISVTX == 0 {
		return fmt.Sprintf("%s is writable by %s", dir, by), nil
	}
	// Sticky (/tmp): only an entry's owner may rename or remove it, and
	// anyone who may write may create a missing one.
	var est syscall.Stat_t
	err = syscall.Lstat(h.onHost(path.Join(dir, name)), &est)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s is writable by %s and has no entry %s yet", dir, by, name), nil
	case err != nil:
		return "", badBody("cannot check who may change host path %q: %v", path.Join(dir, name), err)
	case cred != nil && est.Uid == cred.UID:
		return fmt.Sprintf("%s belongs to uid %d in sticky %s", path.Join(dir, name), cred.UID, dir), nil
	}
	return "", nil
}

// writableBy says whether cred (not the directory's owner) may write in
// the directory whose stat is st, and through whom: its group, a named
// user or group of its POSIX ACL, or everyone. Search permission is not
// required: erring towards "writable" only refuses more.
func writableBy(onHost string, st *syscall.Stat_t, cred *Cred) (bool, string, error) {
	inGroup := func(gid uint32) bool { return cred != nil && slices.Contains(cred.GIDs, gid) }
	acl, err := readACL(onHost)
	if err != nil {
		return false, "", err
	}
	if acl == nil {
		switch {
		case inGroup(st.Gid) && st.Mode&0o020 != 0:
			return true, fmt.Sprintf("its group %d", st.Gid), nil
		case st.Mode&0o002 != 0:
			return true, "everyone", nil
		}
		return false, "", nil
	}
	// With an ACL the mode's group bits are its mask.
	mask := uint16(7)
	for _, e := range acl {
		if e.tag == aclMask {
			mask = e.perm
		}
	}
	for _, e := range acl {
		switch {
		case e.tag == aclUser && cred != nil && e.id == cred.UID && e.perm&mask&2 != 0:
			return true, fmt.Sprintf("uid %d (ACL)", e.id), nil
		case e.tag == aclGroupObj && inGroup(st.Gid) && e.perm&mask&2 != 0:
			return true, fmt.Sprintf("its group %d (ACL)", st.Gid), nil
		case e.tag == aclGroup && inGroup(e.id) && e.perm&mask&2 != 0:
			return true, fmt.Sprintf("gid %d (ACL)", e.id), nil
		case e.tag == aclOther && e.perm&2 != 0:
			return true, "everyone (ACL)", nil
		}
	}
	return false, "", nil
}

// The tags of a POSIX ACL entry in the system.posix_acl_access xattr
// (linux/posix_acl_xattr.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// readACL returns the access ACL of a path, nil when it has none (its
// mode says everything).
func readACL(onHost string) ([]aclEntry, error) {
	buf := make([]byte, 4+8*32)
	for {
		n, err := syscall.Getxattr(onHost, "system.posix_acl_access", buf)
		switch {
		case errors.Is(err, syscall.ENODATA), errors.Is(err, syscall.ENOTSUP):
			return nil, nil
		case errors.Is(err, syscall.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case err != nil:
			return nil, err
		}
		return parseACL(buf[:n])
	}
}

// parseACL decodes the xattr: a little-endian version 2 header, then
// (tag u16, perm u16, id u32) entries.
func parseACL(b []byte) ([]aclEntry, error) {
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != 2 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("malformed POSIX ACL (%d bytes)", len(b))
	}
	var out []aclEntry
	for b = b[4:]; len(b) > 0; b = b[8:] {
		out = append(out, aclEntry{
			tag:  binary.LittleEndian.Uint16(b),
			perm: binary.LittleEndian.Uint16(b[2:]),
			id:   binary.LittleEndian.Uint32(b[4:]),
		})
	}
	return out, nil
}
