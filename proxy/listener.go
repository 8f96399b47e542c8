package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// umaskMu serializes ListenUnix's umask changes: the umask belongs to the
// whole process, so two listeners set up at once must not restore each
// other's value. It is held only around bind.
var umaskMu sync.Mutex

// staleProbeTimeout bounds the dial that tells a stale socket from a live
// one. A live server with a full backlog makes connect block, and that is
// still a live server.
const staleProbeTimeout = time.Second

// maxSunPath is the room for a path in sockaddr_un on Linux, less the NUL.
const maxSunPath = 107

// ListenUnix listens on a Unix socket at path that only mode and group admit.
//
// The socket is never more open than asked, not even for a moment: the
// kernel starts accepting connections into the backlog at listen(), before
// any chmod could run, so bind creates the file with the owner's bits only,
// and the group and the other bits are added after the file has its group.
//
// group is a group name or a numeric gid; empty keeps the process's group.
// A missing parent directory is created with mode 0755. A stale socket (a
// socket file nobody accepts on) is replaced; a socket another process
// serves, or anything that is not a socket, is refused. Closing the
// listener removes the socket file.
func ListenUnix(path string, mode os.FileMode, group string) (net.Listener, error) {
	if mode&^os.ModePerm != 0 {
		return nil, fmt.Errorf("listen on %s: socket mode %v has bits other than permissions", path, mode)
	}
	if len(path) > maxSunPath {
		return nil, fmt.Errorf("listen on %s: path is %d bytes, longer than the %d a Unix socket address holds", path, len(path), maxSunPath)
	}
	gid := -1
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
		gid = g
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: create parent directory: %w", path, err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}

	l, err := bindOwnerOnly(path, mode)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// net sets this already when it created the file; say it here because
	// the server's shutdown relies on it.
	l.SetUnlinkOnClose(true)
	if err := setSocketAccess(path, mode, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// bindOwnerOnly binds and listens with a umask that leaves at most the
// owner's bits of mode, restoring the process umask before it returns.
func bindOwnerOnly(path string, mode os.FileMode) (*net.UnixListener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(int(0o777 &^ (mode.Perm() & 0o700)))
	defer syscall.Umask(old)
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}

// setSocketAccess gives the fresh socket its group, then its exact mode:
// in that order, so that the group bits never apply to the wrong group.
func setSocketAccess(path string, mode os.FileMode, gid int) error {
	// The parent directory may be shared: make sure the name still is the
	// socket just bound before changing what it points to. Lchown (and the
	// socket check) keep a symlink swapped in from redirecting the change.
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("stat new socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return errors.New("new socket was replaced by something else before its mode was set")
	}
	if gid >= 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			return fmt.Errorf("set socket group: %w", err)
		}
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		return fmt.Errorf("set socket mode: %w", err)
	}
	return nil
}

// lookupGroup resolves a group name, or takes a numeric gid as it is (a
// gid need not have a name to own a socket).
func lookupGroup(group string) (int, error) {
	if n, err := strconv.ParseUint(group, 10, 32); err == nil {
		return int(n), nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: %w", group, err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("socket group %q has gid %q, not a number: %w", group, g.Gid, err)
	}
	return int(n), nil
}

// removeStaleSocket clears path for bind when it holds a socket left behind
// by a process that is gone, and refuses anything else that is there.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check existing path: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("path exists and is not a socket (%v); refusing to replace it", fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, staleProbeTimeout)
	switch {
	case err == nil:
		c.Close()
		return errors.New("another process is serving this socket")
	case errors.Is(err, syscall.ECONNREFUSED):
		// Nobody accepts: the file outlived its server.
	case errors.Is(err, syscall.ENOENT):
		return nil // removed meanwhile
	default:
		return fmt.Errorf("probe existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// ParseListenURL splits a listen URL into the network and address for
// net.Listen: unix:///absolute/path or tcp://host:port.
func ParseListenURL(s string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(s, "unix://"):
		p := strings.TrimPrefix(s, "unix://")
		switch {
		case p == "":
			return "", "", fmt.Errorf("listen URL %q: no socket path", s)
		case !strings.HasPrefix(p, "/"):
			return "", "", fmt.Errorf("listen URL %q: socket path %q is not absolute (write unix:///path)", s, p)
		case strings.ContainsRune(p, 0):
			return "", "", fmt.Errorf("listen URL %q: socket path contains a NUL byte", s)
		}
		p = filepath.Clean(p)
		if len(p) > maxSunPath {
			return "", "", fmt.Errorf("listen URL %q: socket path is %d bytes, longer than the %d a Unix socket address holds", s, len(p), maxSunPath)
		}
		return "unix", p, nil
	case strings.HasPrefix(s, "tcp://"):
		u, err := url.Parse(s)
		if err != nil {
			return "", "", fmt.Errorf("listen URL %q: %w", s, err)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return "", "", fmt.Errorf("listen URL %q: want tcp://host:port and nothing else", s)
		}
		port := u.Port()
		if port == "" {
			return "", "", fmt.Errorf("listen URL %q: no port", s)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", "", fmt.Errorf("listen URL %q: port %q is not a number from 0 to 65535", s, port)
		}
		return "tcp", u.Host, nil
	default:
		return "", "", fmt.Errorf("listen URL %q: want unix:///path or tcp://host:port", s)
	}
}

// UnwrapConn returns the connection under any wrappers that expose it with
// an Unwrap() net.Conn method. A *tls.Conn is not
// unwrapped: its identity is its certificate, not the socket's peer.
func UnwrapConn(c net.Conn) net.Conn {
	// Bounded, so that a wrapper that returns itself cannot hang the
	// accept path; real stacks are one or two deep.
	for range 16 {
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			return c
		}
		inner := u.Unwrap()
		if inner == nil {
			return c
		}
		c = inner
	}
	return c
}
