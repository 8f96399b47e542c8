package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Identify reads who is at the other end of c from the kernel: the
// credentials the peer had when it connected (SO_PEERCRED), then, from
// /proc, its groups, executable and cgroup. c must be a Unix socket
// connection, possibly wrapped (see UnwrapConn), or a TLS connection, whose
// caller is its verified client certificate (see identifyTLS).
//
// What /proc says is used only while it provably describes the peer: the
// pid may have been reused by the time dockgate reads it, and a stranger's
// groups or systemd unit must not become the caller's. On kernels with
// SO_PEERPIDFD (6.5+) a pidfd pins the peer and the /proc reads count only
// if the peer is still alive after them; on every kernel the effective uid
// and gid in /proc must equal the connection's.
func Identify(c net.Conn) (*Caller, error) {
	if tc, ok := UnwrapConn(c).(*tls.Conn); ok {
		return identifyTLS(tc)
	}
	uc, ok := UnwrapConn(c).(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("identify caller: connection is a %T; peer identity needs a Unix socket", UnwrapConn(c))
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("identify caller: %w", err)
	}
	var (
		cred     *unix.Ucred
		credErr  error
		pidfd    = -1
		pidfdErr error
	)
	err = raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if credErr == nil {
			pidfd, pidfdErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("identify caller: %w", err)
	}
	if credErr != nil {
		return nil, fmt.Errorf("identify caller: read SO_PEERCRED: %w", credErr)
	}

	stillPeer := func() bool { return true } // kernel without SO_PEERPIDFD: the uid/gid check is all there is
	switch {
	case pidfdErr == nil:
		defer unix.Close(pidfd)
		stillPeer = func() bool { return pidfdAlive(pidfd) }
	case errors.Is(pidfdErr, unix.ESRCH):
		// The peer has exited: whatever /proc/<pid> holds now is not it.
		stillPeer = func() bool { return false }
	}
	return identify(cred.Uid, cred.Gid, cred.Pid, stillPeer), nil
}

// pidfdAlive tells whether the process a pidfd pins still exists (a
// zombie counts: its pid cannot be reused before it is reaped). Signal 0
// checks without sending; EPERM still proves the process is there.
func pidfdAlive(pidfd int) bool {
	err := unix.PidfdSendSignal(pidfd, 0, nil, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// IdentifyPID builds a Caller from credentials as SO_PEERCRED reports them
// (effective uid and gid, and the pid), completing them from /proc/<pid>
// when its effective uid and gid match. pid 0 (a peer in a pid namespace
// dockgate cannot see) reads nothing from /proc.
func IdentifyPID(uid, gid uint32, pid int32) *Caller {
	return identify(uid, gid, pid, func() bool { return true })
}

// identify is IdentifyPID with a check, run after every /proc read, that
// pid still names the peer.
func identify(uid, gid uint32, pid int32, stillPeer func() bool) *Caller {
	c := &Caller{}
	c.UID, c.GID, c.PID = uid, gid, pid
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		c.User = u.Username
	}
	gids := []uint32{gid}
	if p, ok := readProc(uid, gid, pid); ok && stillPeer() {
		gids = append(gids, p.groups...)
		c.Exe = p.exe
		c.Cgroup, c.Unit, c.Container = parseCgroup(p.cgroup)
	}
	c.GIDs = uniqueGIDs(gids)
	for _, g := range c.GIDs {
		if grp, err := user.LookupGroupId(strconv.FormatUint(uint64(g), 10)); err == nil {
			c.Groups = append(c.Groups, grp.Name)
		}
	}
	return c
}

// procInfo is what /proc says about a process.
type procInfo struct {
	groups []uint32 // supplementary
	exe    string
	cgroup string // content of /proc/<pid>/cgroup
}

// readProc reads /proc/<pid>, and reports false when the process there is
// gone or runs with other effective ids than the connection's, which is
// what a reused pid looks like.
func readProc(uid, gid uint32, pid int32) (procInfo, bool) {
	if pid <= 0 {
		return procInfo{}, false
	}
	dir := "/proc/" + strconv.FormatInt(int64(pid), 10)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return procInfo{}, false
	}
	euid, egid, groups, err := parseStatus(string(status))
	if err != nil || euid != uid || egid != gid {
		return procInfo{}, false
	}
	p := procInfo{groups: groups}
	p.exe, _ = os.Readlink(dir + "/exe") // kernel threads and exited processes have none
	if b, err := os.ReadFile(dir + "/cgroup"); err == nil {
		p.cgroup = string(b)
	}
	return p, true
}

// parseStatus reads the effective uid and gid and the supplementary groups
// from /proc/<pid>/status. Effective, because SO_PEERCRED reports those.
func parseStatus(content string) (euid, egid uint32, groups []uint32, err error) {
	var haveUID, haveGID bool
	for line := range strings.Lines(content) {
		key, val, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		switch key {
		case "Uid", "Gid":
			// real, effective, saved, filesystem
			if len(f) < 2 {
				return 0, 0, nil, fmt.Errorf("status line %q: want real and effective ids", line)
			}
			n, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return 0, 0, nil, fmt.Errorf("status line %q: %w", line, err)
			}
			if key == "Uid" {
				euid, haveUID = uint32(n), true
			} else {
				egid, haveGID = uint32(n), true
			}
		case "Groups":
			for _, s := range f {
				n, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return 0, 0, nil, fmt.Errorf("status line %q: %w", line, err)
				}
				groups = append(groups, uint32(n))
			}
		}
	}
	if !haveUID || !haveGID {
		return 0, 0, nil, errors.New("status has no Uid or Gid line")
	}
	return euid, egid, groups, nil
}

// uniqueGIDs drops repeats, keeping the first of each so the primary group
// stays first.
func uniqueGIDs(gids []uint32) []uint32 {
	out := make([]uint32, 0, len(gids))
	for _, g := range gids {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// unitSuffixes are the unit types whose cgroups hold processes (and .timer,
// harmless, as callers expect it named).
var unitSuffixes = []string{".service", ".scope", ".socket", ".mount", ".swap", ".timer"}

// parseCgroup reads /proc/<pid>/cgroup and returns the cgroup path systemd
// tracks the process by, the systemd unit it runs in, and the ID of the
// docker container it runs in; unit and container are never both set.
//
// On a hybrid host the v1 name=systemd hierarchy wins over the v2 line: it
// is the one systemd and dockerd's cgroupfs driver both place processes in,
// while the v2 line may still show the parent's cgroup (a container would
// pass for docker.service) or "/". A name=systemd line that says "/" is a
// named hierarchy mounted on a v2 host for old containers, and the v2 line
// is the one that counts there.
//
// Only the top of the path counts. Below the first component that is not a
// slice, the cgroup tree belongs to that unit: a Delegate=yes service or a
// user's own systemd (user@1000.service) can create subgroups with any
// name, such as jenkins.service or docker-<id>.scope, so a name found
// deeper would let a caller choose its own unit or container.
//
// Containers are recognized in dockerd's own layouts only: the cgroupfs
// driver's /docker/<id> and the systemd driver's docker-<id>.scope under
// any slice. Anything unexpected, including several lines for the same
// hierarchy, yields nothing rather than a guess.
func parseCgroup(content string) (path, unit, container string) {
	var v2, systemd string
	var nv2, nsystemd int
	for line := range strings.Lines(content) {
		line = strings.TrimSuffix(line, "\n")
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		switch {
		case id == "0" && controllers == "":
			v2, nv2 = p, nv2+1
		case slices.Contains(strings.Split(controllers, ","), "name=systemd"):
			systemd, nsystemd = p, nsystemd+1
		}
	}
	switch {
	case nv2 > 1 || nsystemd > 1:
		return "", "", ""
	case nsystemd == 1 && (systemd != "/" || nv2 == 0):
		path = systemd
	case nv2 == 1:
		path = v2
	default:
		return "", "", ""
	}
	// A v2 cgroup that was removed while a (zombie) process still names it.
	path = strings.TrimSuffix(path, " (deleted)")
	if !strings.HasPrefix(path, "/") {
		return "", "", ""
	}
	unit, container = classifyCgroup(path)
	return path, unit, container
}

// classifyCgroup names the unit or docker container at the top of an
// absolute cgroup path (see parseCgroup for why only the top).
func classifyCgroup(path string) (unit, container string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) >= 2 && parts[0] == "docker" && isContainerID(parts[1]) {
		return "", parts[1]
	}
	for _, p := range parts {
		if strings.HasSuffix(p, ".slice") {
			continue
		}
		if id, ok := strings.CutPrefix(p, "docker-"); ok {
			if id, ok := strings.CutSuffix(id, ".scope"); ok && isContainerID(id) {
				return "", id
			}
		}
		for _, s := range unitSuffixes {
			if len(p) > len(s) && strings.HasSuffix(p, s) {
				return p, ""
			}
		}
		return "", ""
	}
	return "", ""
}

// isContainerID reports whether s is a full docker container ID: 64
// lower-case hex digits.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
